import { posix } from "node:path";
import { GitError } from "./error.ts";

/**
 * A repository path made safe: relative, normalised (`./a//b` → `a/b`), inside the work tree, and
 * never into `.git` (whose hooks and config git would run and read). Throws a `git_failed`
 * {@link GitError} otherwise.
 */
export function repoPath(path: string): string {
  if (path === "" || path.includes("\0") || path.includes("\\")) {
    throw new GitError(
      "git_failed",
      `unsafe repository path ${JSON.stringify(path)}: empty, NUL or backslash`,
    );
  }
  if (path.startsWith("/")) {
    throw new GitError("git_failed", `unsafe repository path ${JSON.stringify(path)}: absolute`);
  }
  const normal = posix.normalize(path).replace(/\/+$/, "");
  const segments = normal.split("/");
  if (normal === "." || segments.includes("..")) {
    throw new GitError("git_failed", `unsafe repository path ${JSON.stringify(path)}: leaves the repository`);
  }
  if (segments.some((s) => s.toLowerCase() === ".git")) {
    throw new GitError("git_failed", `unsafe repository path ${JSON.stringify(path)}: inside .git`);
  }
  return normal;
}

/** Throws unless `branch` is a plain branch name git accepts (no option, no `..`, no lock suffix). */
export function checkBranch(branch: string): string {
  const ok =
    /^[A-Za-z0-9._/-]+$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".") &&
    !branch.includes("..") &&
    !branch.includes("//") &&
    !branch.split("/").some((s) => s.startsWith(".") || s.endsWith(".lock"));
  if (!ok) throw new GitError("git_failed", `not a usable branch name: ${JSON.stringify(branch)}`);
  return branch;
}
