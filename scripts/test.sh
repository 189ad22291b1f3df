#!/usr/bin/env bash
# The whole test suite: the README's second command (`npm test`) runs this, and so does .ci/run.
# It installs what the tests need when it is missing (Debian packages, cosign, npm packages), then
# type-checks, lints, checks formatting, and runs every test against real servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== node $(node --version) (pinned by the 'node' devDependency)"

echo "== type check (tsc $(tsc --version | awk '{print $2}'))"
tsc -p .

echo "== lint and format (biome)"
biome ci --reporter=summary .

echo "== tests (vitest)"
mkdir -p .cache
status=0
vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-report.json || status=$?
node scripts/test-summary.ts .cache/vitest-report.json || status=$((status == 0 ? 1 : status))
exit "$status"
