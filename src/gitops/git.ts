/**
 * The git layer of GitOps write-back: one cached working copy per remote under Ferry's data folder
 * (a blobless partial clone), driven through the real `git` CLI with a scrubbed environment.
 * Credentials never reach a command line, a remote URL, `.git/config`, a log or an error: an HTTPS
 * token reaches git through Ferry's GIT_ASKPASS helper and the child's environment, an SSH key and
 * its pinned known_hosts through GIT_SSH_COMMAND (paths only). See docs/gitops.md#git.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { KeyedMutex } from "../common/locks.ts";
import { ASKPASS_SCRIPT, gitEnv, secretsOf } from "./git/env.ts";
import { parseRemote } from "./git/remote.ts";
import type { GitRemote, GitWorkspaceOptions, WorkingCopy } from "./git/types.ts";
import { GitWorkingCopy } from "./git/working-copy.ts";

export type { GitErrorReason } from "./git/error.ts";
export { GitError } from "./git/error.ts";
export type { GitAuth, GitIdentity, GitRemote, GitWorkspaceOptions, WorkingCopy } from "./git/types.ts";

const DEFAULT_TIMEOUT_MS = 120_000;

/** One cached working copy per remote URL under `dir`; operations on one working copy are serialised in-process. */
export class GitWorkspace {
  readonly #dir: string;
  readonly #binary: string;
  readonly #timeoutMs: number;
  readonly #allowFile: boolean;
  readonly #locks = new KeyedMutex();
  /** Copies this process has opened: only at the first open can a lock file left in one be stale. */
  readonly #opened = new Set<string>();
  #prepared: Promise<void> | undefined;

  constructor(options: GitWorkspaceOptions) {
    this.#dir = resolve(options.dir);
    this.#binary = options.gitBinary ?? "git";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#allowFile = options.allowFileRemotes ?? false;
  }

  /** Runs `fn` with the remote's working copy, holding its in-process lock. */
  async with<T>(remote: GitRemote, fn: (wc: WorkingCopy) => Promise<T>): Promise<T> {
    const parsed = parseRemote(remote.url, remote.auth, { allowFile: this.#allowFile });
    return this.#locks.run(parsed.key, async () => {
      await this.#prepare();
      const wc = new GitWorkingCopy({
        binary: this.#binary,
        env: gitEnv({
          remote: parsed,
          auth: remote.auth,
          home: join(this.#dir, "home"),
          askpassFile: join(this.#dir, "bin", "askpass"),
          timeoutMs: this.#timeoutMs,
        }),
        remote: parsed,
        secrets: secretsOf(remote.auth),
        timeoutMs: this.#timeoutMs,
        dir: join(this.#dir, "repos", parsed.key),
      });
      await wc.open(!this.#opened.has(parsed.key));
      this.#opened.add(parsed.key);
      try {
        return await fn(wc);
      } finally {
        wc.close();
      }
    });
  }

  /** Ferry's own git HOME (empty: no user config), the askpass helper, the repos folder; 0700. */
  #prepare(): Promise<void> {
    this.#prepared ??= (async () => {
      for (const sub of ["home", "bin", "repos"])
        await mkdir(join(this.#dir, sub), { recursive: true, mode: 0o700 });
      const askpass = join(this.#dir, "bin", "askpass");
      await writeFile(askpass, ASKPASS_SCRIPT, { mode: 0o700 });
      await chmod(askpass, 0o700);
    })().catch((err: unknown) => {
      this.#prepared = undefined;
      throw err;
    });
    return this.#prepared;
  }
}
