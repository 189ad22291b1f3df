/** The narrow port pull-request mode needs of a forge (GitHub, GitLab), and how its failures map. */
import { FerryError } from "../../common/errors.ts";
import { StepFailure } from "../../promotion/step-runner.ts";

/** A pull (merge) request as Ferry follows it. */
export interface PullRequestView {
  /** GitHub's number, GitLab's iid. */
  number: number;
  url: string;
  state: "open" | "merged" | "closed";
  /** The commit the merge made on the base branch, once merged (when the forge says). */
  mergeSha?: string;
}

/** What to open. */
export interface PullRequestInput {
  /** The branch with Ferry's commit (`ferry/<app>/<env>`). */
  head: string;
  /** The branch it merges into. */
  base: string;
  title: string;
  body: string;
}

/** A forge's pull requests, for one repository (project). */
export interface Forge {
  /** The open pull request from `head` into `base`, if there is one (the oldest, if several). */
  findOpen(head: string, base: string, signal: AbortSignal): Promise<PullRequestView | undefined>;
  open(input: PullRequestInput, signal: AbortSignal): Promise<PullRequestView>;
  get(number: number, signal: AbortSignal): Promise<PullRequestView>;
}

/**
 * A forge's HTTP failure as a step error: a 5xx, a 429 or no answer is retried (`upstream_failed`);
 * 401/403 fail the promotion (`gitops_forge_denied`), any other 4xx too (`gitops_forge_refused`).
 * The message names the forge and the status, never the token; the client's error is not kept as
 * the cause, since it carries the request and its headers (the token) into the log.
 */
export function forgeFailure(forge: string, what: string, status: number | undefined): Error {
  if (status === undefined || status >= 500 || status === 429 || status === 408)
    return new FerryError("upstream_failed", `${forge}: ${what} failed${status ? ` (HTTP ${status})` : ""}`);
  if (status === 401 || status === 403)
    return new StepFailure(
      "gitops_forge_denied",
      `${forge}: ${what} was denied (HTTP ${status}): check the pull request token`,
    );
  return new StepFailure("gitops_forge_refused", `${forge}: ${what} was refused (HTTP ${status})`);
}
