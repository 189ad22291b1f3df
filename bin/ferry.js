#!/usr/bin/env node
// Runs the compiled CLI when it has been built (`npm run build`), else the TypeScript source
// directly (Node >= 22.18 strips types natively; this repo pins Node 24 through the `node` package).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
await import(existsSync(built) ? built.href : new URL("../src/cli/main.ts", import.meta.url).href);
