/** How Ferry authenticates to a Git remote. Holds paths and a token, never put on a command line. */
export type GitAuth =
  | {
      kind: "token";
      /** HTTPS Basic user name; default `x-access-token` (what GitHub and GitLab accept with a token). */
      username?: string;
      token: string;
    }
  | {
      kind: "ssh";
      /** Private key file (mode 0600: ssh refuses a key others can read). */
      privateKeyFile: string;
      /** The only host keys trusted for the remote (`StrictHostKeyChecking=yes`). */
      knownHostsFile: string;
    };

/** A Git remote: `https://…`, `ssh://…` or `git@host:path`; never with credentials in the URL. */
export interface GitRemote {
  url: string;
  auth?: GitAuth;
}

/** Author or committer of a commit. */
export interface GitIdentity {
  name: string;
  email: string;
}

/** A cached working copy of one remote, used while {@link GitWorkspace.with} holds its lock. */
export interface WorkingCopy {
  /** Fetches `branch` (blobless partial clone on first use) and resets the work tree to the remote's head of it; returns that sha. */
  sync(branch: string, signal?: AbortSignal): Promise<string>;
  /** A file at the synced head (work tree), undefined when it does not exist. Paths are relative, normalised, and may not leave the repo (`..`, absolute: throw). */
  readFile(path: string): Promise<string | undefined>;
  /** Writes a file of the work tree (parents created); {@link commit} commits it. */
  writeFile(path: string, text: string): Promise<void>;
  /** Commits the written files; returns the new sha. Never an empty commit (throws if nothing changed). */
  commit(message: string, author: GitIdentity, committer: GitIdentity): Promise<string>;
  /** Pushes HEAD to `branch`; `rejected` on a non-fast-forward (someone pushed first). `force` for PR branches. */
  push(branch: string, options?: { force?: boolean; signal?: AbortSignal }): Promise<"pushed" | "rejected">;
  /** Commits reachable from the synced remote head of `branch`, newest first, at most `limit`, with their full messages (to find a trailer). */
  log(branch: string, limit: number): Promise<{ sha: string; message: string }[]>;
  /** Content of `path` at the remote head of `branch` after a fetch (for drift), undefined when absent. */
  readRemote(
    branch: string,
    path: string,
    signal?: AbortSignal,
  ): Promise<{ sha: string; text: string | undefined }>;
}

/** Options of a {@link GitWorkspace}. */
export interface GitWorkspaceOptions {
  /** Ferry-owned directory for the working copies, git's HOME and the askpass helper (e.g. `<data>/gitops`). */
  dir: string;
  /** The git executable; default `git` from PATH. */
  gitBinary?: string;
  /** Limit of each git command, after which its whole process group is killed; default 120 s. */
  timeoutMs?: number;
  /** Accept `file://` remotes (dev mode only: the embedded default's local demo repository). */
  allowFileRemotes?: boolean;
}
