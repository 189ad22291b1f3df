/** Why a git operation failed; see {@link GitError}. */
export type GitErrorReason = "git_auth_failed" | "git_unreachable" | "git_failed" | "git_host_key";

/**
 * A failed git operation. `git_auth_failed`: the remote refused the token or key. `git_host_key`:
 * the SSH host key is not the pinned one. `git_unreachable`: no connection, a 5xx, or a time-out
 * (worth a later try). `git_failed`: anything else (a missing branch, an unsafe path, a corrupt
 * repository that re-cloning did not mend). The message names the remote without userinfo and
 * carries git's own words scrubbed of anything that looks like a credential.
 */
export class GitError extends Error {
  readonly reason: GitErrorReason;

  constructor(reason: GitErrorReason, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GitError";
    this.reason = reason;
  }
}
