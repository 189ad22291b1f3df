import { spawn } from "node:child_process";

/** One git invocation; see {@link execGit}. */
export interface GitInvocation {
  binary: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Written to stdin (a commit message); stdin is closed either way, so git never waits on it. */
  input?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** How a git invocation ended. `code` is null when it was killed (time-out, abort) or never started. */
export interface GitOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the binary could not be started at all. */
  spawnError?: Error;
}

/** More than any file Ferry edits: a runaway output is cut, not buffered without end. */
const MAX_OUTPUT = 32 * 1024 * 1024;

/**
 * Runs git without a shell (`spawn` rather than `execFile`: it writes stdin and kills a process
 * group). git runs in its own process group, so a time-out or an abort kills its helpers too
 * (git-remote-https, ssh, index-pack), not only the parent that would leave them hanging on a
 * stalled server. Never throws; the caller classifies the outcome.
 */
export function execGit(inv: GitInvocation): Promise<GitOutcome> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let aborted = false;
    let spawnError: Error | undefined;
    if (inv.signal?.aborted) {
      resolve({ code: null, stdout: "", stderr: "", timedOut, aborted: true });
      return;
    }
    const child = spawn(inv.binary, inv.args, {
      cwd: inv.cwd,
      env: inv.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      shell: false,
    });
    const killGroup = () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, inv.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    inv.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (b: Buffer) => {
      outLen += b.length;
      if (outLen <= MAX_OUTPUT) out.push(b);
      else killGroup();
    });
    child.stderr.on("data", (b: Buffer) => {
      // The tail of stderr is what says why; keep the last 256 KiB.
      err.push(b);
      errLen += b.length;
      while (errLen > 256 * 1024 && err.length > 1) errLen -= err.shift()!.length;
    });
    child.on("error", (e) => {
      spawnError = e;
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      inv.signal?.removeEventListener("abort", onAbort);
      resolve({
        code: timedOut || aborted || outLen > MAX_OUTPUT ? null : code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
        aborted,
        ...(spawnError ? { spawnError } : {}),
      });
    });
    child.stdin.on("error", () => {
      // git may exit before reading its input; the exit code says what happened.
    });
    child.stdin.end(inv.input ?? "");
  });
}
