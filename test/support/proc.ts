import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What a finished command left behind. `code` is -1 when it was killed or could not start. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  cwd?: string;
  /** The complete environment (not merged with process.env: callers decide what leaks in). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; stdin is closed at once when absent, so nothing can prompt. */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
}

/**
 * Runs a command to completion without a shell and collects its output. It never throws for a
 * non-zero exit: tests often assert on failures (a refused push, a failed verification).
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ["pipe", "pipe", "pipe"],
        uid: opts.uid,
        gid: opts.gid,
      });
    } catch (err) {
      resolve({ code: -1, stdout: "", stderr: `cannot start ${cmd}: ${String(err)}` });
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => errOut.push(b));
    const timer = setTimeout(() => {
      errOut.push(Buffer.from(`\n[killed after ${opts.timeoutMs ?? 120_000} ms]\n`));
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 120_000);
    let spawnError: Error | undefined;
    child.on("error", (err) => {
      spawnError = err;
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(errOut).toString("utf8");
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: spawnError ? `${stderr}cannot start ${cmd}: ${spawnError.message}` : stderr,
      });
    });
    // A child that exits before reading its input makes the write fail with EPIPE; the exit code says it all.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

/** Like {@link run}, but throws (with the command's stderr) unless it exits 0. Returns stdout. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`);
  }
  return res.stdout;
}

const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;

/**
 * Registers a synchronous last-resort cleanup run when the test process exits without calling
 * `stop()` (a crashed test file, a forgotten afterAll), so no registry or database outlives it.
 * Returns a function that unregisters it; `stop()` implementations call that once they are done.
 */
export function onProcessExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      // Newest first, like nested finally blocks: a server is stopped before its temp dir is removed.
      for (const cleanup of [...exitCleanups].reverse()) {
        try {
          cleanup();
        } catch {
          // Best effort at exit: nothing is left to report to.
        }
      }
    });
  }
  exitCleanups.add(fn);
  return () => {
    exitCleanups.delete(fn);
  };
}

/** A temp dir under os.tmpdir(), removed by the returned `remove()` or, failing that, at process exit. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `ferry-${prefix}-`));
  const unregister = onProcessExit(() => rmSync(path, { recursive: true, force: true }));
  return {
    path,
    remove: async () => {
      unregister();
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** A long-running child (a server) whose recent output is kept for error messages. */
export interface ManagedProcess {
  readonly child: ChildProcess;
  /** The last ~64 KiB of combined stdout/stderr. */
  output(): string;
  /** Undefined while running; a description such as "exited with code 1" once it has ended. */
  exitStatus(): string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs` (default 3 s); resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const OUTPUT_LIMIT = 64 * 1024;

/** Starts a server process in the foreground (as a child of the test process) and keeps its output. */
export function startProcess(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ManagedProcess {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffer = "";
  const append = (b: Buffer) => {
    buffer += b.toString("utf8");
    if (buffer.length > OUTPUT_LIMIT) buffer = buffer.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("error", (err) => {
      status = `could not start ${cmd}: ${err.message}`;
      resolve();
    });
    child.once("exit", (code, signal) => {
      status = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve();
    });
  });
  const unregister = onProcessExit(() => {
    if (status === undefined) child.kill("SIGKILL");
  });
  return {
    child,
    output: () => buffer,
    exitStatus: () => status,
    async stop(graceMs = 3_000) {
      if (status === undefined) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      unregister();
    },
  };
}
