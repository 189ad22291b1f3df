import { createHash } from "node:crypto";
import { GitError } from "./error.ts";
import type { GitAuth } from "./types.ts";

/** A remote URL checked for Ferry's use; see {@link parseRemote}. */
export interface ParsedRemote {
  /** The URL as given (it has no credentials: {@link parseRemote} refuses those). */
  url: string;
  transport: "http" | "ssh" | "file";
  /** `host[:port]` as git shows it in its credential prompts (HTTP remotes). */
  host: string;
  /** The URL for messages: no userinfo at all (not even an SSH login name). */
  display: string;
  /** Name of the remote's working copy directory: a hash, so no URL text reaches the file system. */
  key: string;
}

// scp-like syntax: [user@]host:path, where the path does not start with "//" (that would be a URL).
const SCP_LIKE = /^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?!\/\/)([^\s]+)$/;

function refuse(message: string): never {
  throw new GitError("git_failed", message);
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Checks a remote URL: https (or http on loopback only, for tests), ssh:// or scp-like (or, with
 * `allowFile` in dev mode, file:///path), no
 * password or token in it, nothing git could read as an option or a local path. Throws a
 * `git_failed` {@link GitError} naming the problem.
 */
export function parseRemote(
  url: string,
  auth?: GitAuth,
  options: { allowFile?: boolean } = {},
): ParsedRemote {
  // Control characters and spaces have no business in a remote URL, and a leading "-" is an option.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (url === "" || /[\s\0-\x1f\x7f]/.test(url) || url.startsWith("-")) {
    refuse("the git remote URL is empty or has spaces, control characters or a leading '-'");
  }
  // git reads "<transport>::<address>" as a remote helper (ext:: runs a command) before anything else.
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(url))
    refuse("the git remote URL names a remote helper (transport::address)");
  const key = createHash("sha256").update(url).digest("hex").slice(0, 24);
  let parsed: ParsedRemote;
  const scp = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url) ? null : SCP_LIKE.exec(url);
  if (scp) {
    const path = scp[3] ?? "";
    if (path.startsWith("-")) refuse("the git remote URL's path starts with '-'");
    parsed = { url, transport: "ssh", host: scp[2] ?? "", display: `${scp[2]}:${path}`, key };
  } else {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      refuse("the git remote URL is neither https://…, ssh://… nor user@host:path");
    }
    // A local bare repository, for dev mode only (the embedded default's demo): no host, no auth.
    if (u.protocol === "file:" && options.allowFile) {
      if (u.host !== "" || u.search !== "" || u.hash !== "" || auth !== undefined)
        refuse("a file:// remote is file:///absolute/path, with no host, query or auth");
      return { url, transport: "file", host: "", display: `file://${u.pathname}`, key };
    }
    if (u.protocol !== "https:" && u.protocol !== "http:" && u.protocol !== "ssh:") {
      refuse(`the git remote URL's scheme ${u.protocol} is not supported (https, ssh)`);
    }
    if (u.password !== "") refuse("the git remote URL has a password in it: use auth instead");
    if (u.protocol !== "ssh:" && u.username !== "") {
      refuse("the git remote URL has a user name in it: use auth.username instead");
    }
    if (u.search !== "" || u.hash !== "") refuse("the git remote URL has a query or fragment");
    if (u.hostname === "") refuse("the git remote URL has no host");
    const display = `${u.protocol}//${u.host}${u.pathname}`;
    parsed = { url, transport: u.protocol === "ssh:" ? "ssh" : "http", host: u.host, display, key };
    // A token over plain http travels in clear text; only the loopback test servers get one.
    if (u.protocol === "http:" && auth?.kind === "token" && !isLoopback(u.hostname)) {
      refuse(`refusing to send a token over plain http to ${u.host}: use https`);
    }
  }
  if (auth?.kind === "token" && parsed.transport !== "http") {
    refuse(`token auth needs an https remote, not ${parsed.display}`);
  }
  if (auth?.kind === "ssh" && parsed.transport !== "ssh") {
    refuse(`ssh auth needs an ssh remote, not ${parsed.display}`);
  }
  return parsed;
}
