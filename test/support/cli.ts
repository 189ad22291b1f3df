import { type ChildProcess, spawn } from "node:child_process";
import { runCli } from "../../src/cli/program.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

/** A line of a stack trace: the CLI must never print one. */
export const NO_STACK = /^\s+at .+:\d+:\d+\)?$/m;

/** What a `ferry` child process left behind. */
export interface FerryRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link runFerry}. */
export interface RunFerryOptions {
  /** Added to an environment of PATH alone: nothing else of the test's environment leaks in. */
  env?: Record<string, string>;
  /** Called once the child is spawned (to watch its output or signal it). */
  onStart?: (child: ChildProcess) => void;
}

/**
 * Runs `ferry` as a real child process (`src/cli/main.ts` under this Node, stdin closed) and collects
 * its output; never rejects for a non-zero exit, since tests assert on exit codes.
 */
export function runFerry(args: string[], options: RunFerryOptions = {}): Promise<FerryRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH ?? "", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    options.onStart?.(child);
  });
}

/** What an in-process CLI run returned and wrote. */
export interface InProcessRun {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs the CLI in this process (`runCli`, with `env` as its whole environment, empty by default) and
 * collects what it writes: for commands whose fixtures (servers, temp dirs) live in the test process.
 */
export async function runFerryInProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<InProcessRun> {
  let out = "";
  let err = "";
  const code = await runCli(args, {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env,
  });
  return { code, out, err };
}
