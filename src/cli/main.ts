#!/usr/bin/env node
import { runCli } from "./program.ts";

/** Process entry point: runs the CLI, and for `serve`, stops gracefully on SIGTERM/SIGINT. */
const code = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  onServing: (stop) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`ferry: ${signal} received, draining\n`);
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`ferry: shutdown failed: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  },
});
if (code !== 0) process.exitCode = code;
