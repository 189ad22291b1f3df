#!/usr/bin/env bash
# Installs what the benchmarks in bench/ drive Ferry with: wrk (Debian package), the load generator
# of bench/token-exchange.ts. Idempotent: prints nothing when everything is present, one line per
# thing it installs otherwise. Safe for CI (no stdin): apt runs non-interactively. When wrk cannot
# be installed (no apt, no root), it says so and exits 0: the bench then falls back to Node clients.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-bench-deps: %s\n' "$*" >&2; }

if command -v wrk >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    log "wrk is missing and installing it needs root; the bench will use Node clients"
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "wrk is missing and there is no apt-get; the bench will use Node clients"
  exit 0
fi

# Quiet on success; a failure shows apt's output, then the bench still runs with Node clients.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
log "installing Debian package: wrk"
if ! { $SUDO apt-get install -y -qq --no-install-recommends wrk >"$out" 2>&1 ||
  { $SUDO apt-get update -qq >"$out" 2>&1 && $SUDO apt-get install -y -qq --no-install-recommends wrk >"$out" 2>&1; }; }; then
  cat "$out" >&2
  log "installing wrk failed; the bench will use Node clients"
fi
