#!/usr/bin/env node
// The `ferry` command: runs the compiled CLI (dist/, built by `npm run build`, which `npm ci` and
// `npm link` run through `prepare`). It never runs the TypeScript source, and it checks the Node
// version first, with syntax every Node since 14 parses, so an old Node gets one clear line instead
// of a stack trace (Node 20 cannot load `.ts` files, and Ferry is built and tested on Node 24).
import { existsSync } from "node:fs";

const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split(".")[0]);
if (!(major >= REQUIRED_MAJOR)) {
  process.stderr.write(
    `ferry: needs Node.js ${REQUIRED_MAJOR} or newer, this is ${process.version} (${process.execPath}); ` +
      "install Node 24 (https://nodejs.org), or run ferry through the container image (see docs/install.md)\n",
  );
  process.exit(2);
}

const built = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    "ferry: the CLI is not built; run `npm run build` in the checkout (or `npm run ferry -- ARGS` to run it from source)\n",
  );
  process.exit(2);
}
await import(built.href);
