import type { GitErrorReason } from "./error.ts";

/**
 * Why a git command failed, from its stderr. git and ssh exit 128 and 255 for almost everything,
 * so their (LANG=C, English) diagnostics are the only interface there is: the patterns live here,
 * in one place, each one tested against the real client's output (test/gitops/git-*.test.ts).
 * Order matters: an SSH auth failure is followed by "Could not read from remote repository",
 * which alone would read as unreachable.
 */
export function classifyGitFailure(stderr: string): GitErrorReason {
  if (
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key is known for/i.test(stderr)
  ) {
    return "git_host_key";
  }
  if (
    /Authentication failed|could not read (Username|Password)|terminal prompts disabled|Permission denied \(|returned error: 40[13]\b|HTTP Basic: Access denied|Invalid username or password|Too many authentication failures|UNPROTECTED PRIVATE KEY FILE|Load key .*:|no such identity|Permission to \S+ denied/i.test(
      stderr,
    )
  ) {
    return "git_auth_failed";
  }
  if (
    /Could not resolve host|Failed to connect|Connection refused|Connection timed out|Connection reset|Operation timed out|Could not connect|ssh: connect to host|Connection closed by|kex_exchange_identification|No route to host|Network is unreachable|returned error: 5\d\d\b|SSL certificate problem|early EOF|the remote end hung up unexpectedly|Empty reply from server/i.test(
      stderr,
    )
  ) {
    return "git_unreachable";
  }
  return "git_failed";
}

/** True when a fetch failed because the remote has no such branch (no re-clone helps with that). */
export function isMissingRemoteRef(stderr: string): boolean {
  return /couldn't find remote ref/i.test(stderr);
}
