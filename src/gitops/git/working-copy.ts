import { randomUUID } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { classifyGitFailure, isMissingRemoteRef } from "./classify.ts";
import { GitError } from "./error.ts";
import { checkBranch, repoPath } from "./paths.ts";
import type { ParsedRemote } from "./remote.ts";
import { execGit, type GitOutcome } from "./run.ts";
import { gitDiagnostic } from "./scrub.ts";
import type { GitIdentity, WorkingCopy } from "./types.ts";

/** What a {@link GitWorkingCopy} runs with; the workspace builds it. */
export interface WorkingCopyContext {
  binary: string;
  /** The remote's environment (auth included), without GIT_DIR. */
  env: NodeJS.ProcessEnv;
  remote: ParsedRemote;
  /** Known secrets to scrub from git's output. */
  secrets: readonly string[];
  timeoutMs: number;
  /** The work tree (`.git` inside). */
  dir: string;
}

interface RunOptions {
  /** The command talks to the remote: a time-out means the remote is unreachable. */
  network?: boolean;
  input?: string;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Exit codes that are not a failure (default: 0 only). */
  ok?: readonly number[];
  /** A different repository than the working copy (a fresh one being initialised). */
  dir?: string;
  /** Run without GIT_DIR and GIT_WORK_TREE, in the parent of `dir` (for `git init`). */
  bare?: boolean;
}

/**
 * Failures of a git command on the copy itself that a re-clone may mend (a corrupt object, a stale
 * lock, a ref that no longer fits). Not: network, auth or host-key failures, time-outs, aborts, a
 * missing branch, and Ferry's own refusals, which a fresh copy would only repeat.
 */
const mendable = new WeakSet<GitError>();

// Lock files git leaves behind when it is killed mid-write (index, HEAD, config, refs, shallow).
function isLockFile(name: string): boolean {
  return name.endsWith(".lock");
}

async function findLockFiles(gitDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isFile() && isLockFile(entry.name)) found.push(join(dir, entry.name));
      else if (entry.isDirectory() && depth > 0) await walk(join(dir, entry.name), depth - 1);
    }
  };
  const top = await readdir(gitDir, { withFileTypes: true });
  for (const entry of top) if (entry.isFile() && isLockFile(entry.name)) found.push(join(gitDir, entry.name));
  await walk(join(gitDir, "refs"), 16).catch(() => {});
  return found;
}

function checkIdentity(role: string, who: GitIdentity): void {
  // git would refuse or mangle these; a newline could forge a header of the commit object.
  for (const [field, value] of [
    ["name", who.name],
    ["email", who.email],
  ] as const) {
    if (value.trim() === "" || /[\0\n\r<>]/.test(value)) {
      throw new GitError(
        "git_failed",
        `the ${role} ${field} ${JSON.stringify(value)} is empty or has <, > or a newline`,
      );
    }
  }
}

/** The {@link WorkingCopy} of one remote: a blobless partial clone kept in `ctx.dir`. */
export class GitWorkingCopy implements WorkingCopy {
  readonly #ctx: WorkingCopyContext;
  readonly #written = new Set<string>();
  #closed = false;
  /** The work tree is only known after a sync in this `with` (a re-clone empties it). */
  #synced = false;

  constructor(ctx: WorkingCopyContext) {
    this.#ctx = ctx;
  }

  /**
   * Makes the copy usable: a copy that a crash left half-written (lock files of a killed git, a
   * missing or foreign `.git`) is removed, to be re-cloned. `firstUse` is the first time this
   * process opens it: only then can a lock file be stale rather than another command's.
   */
  async open(firstUse: boolean): Promise<void> {
    const parent = dirname(this.#ctx.dir);
    const base = `${this.#ctx.dir.slice(parent.length + 1)}.tmp-`;
    // Initialisations that a crash interrupted before their rename.
    for (const name of await readdir(parent)) {
      if (name.startsWith(base)) await rm(join(parent, name), { recursive: true, force: true });
    }
    if (await this.#exists()) {
      if (firstUse && !(await this.#healthy())) await rm(this.#ctx.dir, { recursive: true, force: true });
    }
    if (!(await this.#exists())) await this.#init();
  }

  /** After {@link GitWorkspace.with} returns: the lock is gone, so is this object's use. */
  close(): void {
    this.#closed = true;
  }

  async sync(branch: string, signal?: AbortSignal): Promise<string> {
    this.#check();
    checkBranch(branch);
    return this.#mending(async () => {
      const sha = await this.#fetch(branch, signal);
      await this.#git(["checkout", "--quiet", "--force", "--detach", sha], { network: true, signal });
      await this.#git(["clean", "-ffdxq"], { signal });
      this.#written.clear();
      this.#synced = true;
      return sha;
    });
  }

  async readFile(path: string): Promise<string | undefined> {
    this.#check(true);
    const target = await this.#inside(repoPath(path), false);
    return target === undefined ? undefined : readFile(target, "utf8");
  }

  async writeFile(path: string, text: string): Promise<void> {
    this.#check(true);
    const rel = repoPath(path);
    const target = await this.#inside(rel, true);
    await writeFile(target ?? join(this.#ctx.dir, rel), text);
    this.#written.add(rel);
  }

  async commit(message: string, author: GitIdentity, committer: GitIdentity): Promise<string> {
    this.#check(true);
    checkIdentity("author", author);
    checkIdentity("committer", committer);
    if (message.trim() === "") throw new GitError("git_failed", "a commit needs a message");
    if (this.#written.size > 0) await this.#git(["add", "--", ...this.#written]);
    const diff = await this.#git(["diff", "--cached", "--quiet"], { ok: [0, 1] });
    if (diff.code === 0)
      throw new GitError("git_failed", "nothing to commit: the written files are unchanged");
    await this.#git(["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "--file=-"], {
      input: message,
      env: {
        GIT_AUTHOR_NAME: author.name,
        GIT_AUTHOR_EMAIL: author.email,
        GIT_COMMITTER_NAME: committer.name,
        GIT_COMMITTER_EMAIL: committer.email,
      },
    });
    this.#written.clear();
    return (await this.#git(["rev-parse", "--verify", "HEAD^{commit}"])).stdout.trim();
  }

  async push(
    branch: string,
    options: { force?: boolean; signal?: AbortSignal } = {},
  ): Promise<"pushed" | "rejected"> {
    this.#check(true);
    checkBranch(branch);
    const ref = `refs/heads/${branch}`;
    const refspec = `${options.force ? "+" : ""}HEAD:${ref}`;
    const out = await this.#git(["push", "--porcelain", "--no-verify", "origin", refspec], {
      network: true,
      signal: options.signal,
      ok: [0, 1],
    });
    // --porcelain: "<flag>\t<from>:<to>\t<summary>" per ref, "!" for a refused one.
    const status = out.stdout
      .split("\n")
      .map((l) => /^(.)\t([^\t]*)\t(.*)$/.exec(l))
      .find((m) => m?.[2]?.endsWith(`:${ref}`));
    if (status?.[1] === "!") {
      if (pushRefusal(status[3] ?? "") === "rejected") return "rejected";
      throw new GitError(
        classifyGitFailure(out.stderr),
        `git push to ${branch} of ${this.#ctx.remote.display} refused: ${gitDiagnostic(`${status[3]}\n${out.stderr}`, this.#ctx.secrets)}`,
      );
    }
    if (out.code !== 0 || status === undefined) throw this.#failure("push", out, false, options.signal);
    await this.#git(["update-ref", `refs/remotes/origin/${branch}`, "HEAD"]);
    return "pushed";
  }

  async log(branch: string, limit: number): Promise<{ sha: string; message: string }[]> {
    this.#check();
    checkBranch(branch);
    if (!Number.isInteger(limit) || limit < 1)
      throw new GitError("git_failed", `log limit must be a positive integer, not ${limit}`);
    const head = await this.#remoteHead(branch);
    const out = await this.#git(["log", `--max-count=${limit}`, "--format=%H%x00%B%x1e", head, "--"]);
    return out.stdout
      .split("\x1e")
      .map((r) => r.replace(/^\n/, ""))
      .filter((r) => r !== "")
      .map((r) => {
        const nul = r.indexOf("\0");
        return { sha: r.slice(0, nul), message: r.slice(nul + 1).replace(/\n+$/, "") };
      });
  }

  async readRemote(
    branch: string,
    path: string,
    signal?: AbortSignal,
  ): Promise<{ sha: string; text: string | undefined }> {
    this.#check();
    checkBranch(branch);
    const rel = repoPath(path);
    return this.#mending(async () => {
      const sha = await this.#fetch(branch, signal);
      const entry =
        (await this.#git(["ls-tree", "-z", sha, "--", rel], { signal })).stdout.split("\0")[0] ?? "";
      if (entry === "") return { sha, text: undefined };
      const m = /^(\d+) (\w+) ([0-9a-f]+)\t/.exec(entry);
      if (m?.[2] !== "blob" || m[1] === "120000") {
        throw new GitError(
          "git_failed",
          `${rel} at ${sha} of ${this.#ctx.remote.display} is not a regular file`,
        );
      }
      // A blobless clone fetches this one blob now, with the same environment (and auth).
      const blob = await this.#git(["cat-file", "blob", m[3]!], { network: true, signal });
      return { sha, text: blob.stdout };
    });
  }

  // -------------------------------------------------------------------------------------------

  #check(needsSync = false): void {
    if (this.#closed) throw new Error("this working copy was used after GitWorkspace.with returned");
    if (needsSync && !this.#synced) {
      throw new GitError("git_failed", "the work tree is not synced: call sync(branch) first in this with()");
    }
  }

  async #exists(): Promise<boolean> {
    return lstat(join(this.#ctx.dir, ".git", "HEAD")).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async #healthy(): Promise<boolean> {
    const gitDir = join(this.#ctx.dir, ".git");
    if ((await findLockFiles(gitDir).catch(() => ["unreadable"])).length > 0) return false;
    const url = await this.#run(["config", "--get", "remote.origin.url"], {});
    const promisor = await this.#run(["config", "--get", "remote.origin.promisor"], {});
    return url.code === 0 && url.stdout.trim() === this.#ctx.remote.url && promisor.stdout.trim() === "true";
  }

  /** A fresh repository for the remote, configured as a blobless partial clone, then renamed into place. */
  async #init(): Promise<void> {
    const tmp = `${this.#ctx.dir}.tmp-${randomUUID()}`;
    try {
      // Without GIT_DIR/GIT_WORK_TREE: with them, init would record the temporary path as core.worktree.
      await this.#git(["init", "--quiet", tmp], { dir: tmp, bare: true });
      await this.#git(["config", "remote.origin.url", this.#ctx.remote.url], { dir: tmp });
      await this.#git(["config", "remote.origin.promisor", "true"], { dir: tmp });
      await this.#git(["config", "remote.origin.partialclonefilter", "blob:none"], { dir: tmp });
      await rename(tmp, this.#ctx.dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Runs `fn`, and when it fails for a local reason (a corrupt object, a stale lock, a ref that
   * no longer fits), re-clones and runs it once more. Network, auth and host-key failures, an
   * abort and a missing branch go straight to the caller.
   */
  async #mending<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof GitError) || !mendable.has(err)) throw err;
      this.#synced = false;
      this.#written.clear();
      await rm(this.#ctx.dir, { recursive: true, force: true });
      await this.#init();
      return fn();
    }
  }

  async #fetch(branch: string, signal: AbortSignal | undefined): Promise<string> {
    const refspec = `+refs/heads/${branch}:refs/remotes/origin/${branch}`;
    const args = [
      "fetch",
      "--quiet",
      "--no-tags",
      "--no-write-fetch-head",
      "--filter=blob:none",
      "origin",
      refspec,
    ];
    const out = await this.#run(args, { signal });
    if (out.code !== 0) {
      if (isMissingRemoteRef(out.stderr)) {
        throw new GitError("git_failed", `branch ${branch} does not exist on ${this.#ctx.remote.display}`);
      }
      throw this.#failure("fetch", out, true, signal);
    }
    return this.#remoteHead(branch);
  }

  async #remoteHead(branch: string): Promise<string> {
    const out = await this.#run(
      ["rev-parse", "--verify", "--quiet", `refs/remotes/origin/${branch}^{commit}`],
      {},
    );
    if (out.code !== 0) {
      throw new GitError(
        "git_failed",
        `branch ${branch} of ${this.#ctx.remote.display} has not been fetched`,
      );
    }
    return out.stdout.trim();
  }

  async #git(args: readonly string[], opts: RunOptions = {}): Promise<GitOutcome> {
    const out = await this.#run(args, opts);
    if (out.code === null || !(opts.ok ?? [0]).includes(out.code)) {
      throw this.#failure(args[0] ?? "", out, opts.network ?? false, opts.signal);
    }
    return out;
  }

  #run(args: readonly string[], opts: RunOptions): Promise<GitOutcome> {
    const dir = opts.dir ?? this.#ctx.dir;
    // An explicit GIT_DIR: git never walks up to a repository around the workspace.
    const where = opts.bare ? {} : { GIT_DIR: join(dir, ".git"), GIT_WORK_TREE: dir };
    return execGit({
      binary: this.#ctx.binary,
      args,
      cwd: opts.bare ? dirname(dir) : dir,
      env: { ...this.#ctx.env, ...opts.env, ...where },
      input: opts.input,
      timeoutMs: this.#ctx.timeoutMs,
      signal: opts.signal,
    });
  }

  #failure(what: string, out: GitOutcome, network: boolean, signal: AbortSignal | undefined): GitError {
    const where = this.#ctx.remote.display;
    let err: GitError;
    if (out.aborted) {
      err = new GitError("git_failed", `git ${what} for ${where} was aborted`, { cause: signal?.reason });
    } else if (out.timedOut) {
      err = new GitError(
        network ? "git_unreachable" : "git_failed",
        `git ${what} for ${where} did not finish within ${this.#ctx.timeoutMs} ms`,
      );
    } else if (out.spawnError) {
      err = new GitError("git_failed", `cannot run ${this.#ctx.binary}: ${out.spawnError.message}`);
    } else {
      const reason = classifyGitFailure(out.stderr);
      err = new GitError(
        reason,
        `git ${what} failed for ${where}: ${gitDiagnostic(out.stderr, this.#ctx.secrets) || `exit ${out.code}`}`,
      );
      if (reason === "git_failed") mendable.add(err);
    }
    return err;
  }

  /**
   * The absolute path of `rel` in the work tree, checked component by component: a symlink
   * anywhere (a repository can hold one pointing at /etc) is refused, never followed. Undefined
   * when the file does not exist; with `create`, missing parents are made.
   */
  async #inside(rel: string, create: boolean): Promise<string | undefined> {
    const segments = rel.split("/");
    let current = this.#ctx.dir;
    for (const [i, segment] of segments.entries()) {
      current = join(current, segment);
      const last = i === segments.length - 1;
      const stat = await lstat(current).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return undefined;
        throw e;
      });
      if (stat === undefined) {
        if (!create) return undefined;
        if (!last) await mkdir(current);
        continue;
      }
      if (stat.isSymbolicLink()) {
        throw new GitError(
          "git_failed",
          `${rel} goes through a symbolic link (${segments.slice(0, i + 1).join("/")}): refused`,
        );
      }
      if (last ? !stat.isFile() : !stat.isDirectory()) {
        throw new GitError(
          "git_failed",
          `${segments.slice(0, i + 1).join("/")} in ${rel} is not a ${last ? "file" : "directory"}`,
        );
      }
    }
    return current;
  }
}

/**
 * What a refused ref of `git push --porcelain` means: `rejected` when re-applying the edit on the
 * new head can help, `refused` when it cannot. "[rejected]" is git's own refusal (non-fast-forward,
 * fetch first); "[remote rejected]" is the server's (a protected branch, a hook), which no re-apply
 * gets past, except when the server lost the race for the ref to another push after advertising
 * it ("cannot lock ref …: is at X but expected Y"): a non-fast-forward found late.
 */
export function pushRefusal(summary: string): "rejected" | "refused" {
  if (summary.startsWith("[rejected]")) return "rejected";
  if (/^\[remote rejected\].*(cannot lock ref|but expected)/.test(summary)) return "rejected";
  return "refused";
}
