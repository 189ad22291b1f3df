/** Pull requests on GitHub (or GitHub Enterprise) through `@octokit/rest`. */
import { Octokit } from "@octokit/rest";
import { type Forge, forgeFailure, type PullRequestView } from "./forge.ts";

/** Where a GitHub repository's pull requests are. */
export interface GithubForgeOptions {
  /** The REST API's base URL, e.g. `https://api.github.com`. */
  api: string;
  owner: string;
  repo: string;
  token: string;
}

interface GithubPull {
  number: number;
  html_url: string;
  state: string;
  merged?: boolean | null;
  merged_at?: string | null;
  merge_commit_sha?: string | null;
}

function view(pr: GithubPull): PullRequestView {
  const merged = pr.merged === true || (pr.merged_at ?? null) !== null;
  return {
    number: pr.number,
    url: pr.html_url,
    state: merged ? "merged" : pr.state === "open" ? "open" : "closed",
    ...(merged && pr.merge_commit_sha ? { mergeSha: pr.merge_commit_sha } : {}),
  };
}

// Octokit logs deprecations and request failures to the console by default; Ferry reports them itself.
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A {@link Forge} over GitHub's REST API (`baseUrl` = the configured `api`). */
export function githubForge(options: GithubForgeOptions): Forge {
  const octokit = new Octokit({ auth: options.token, baseUrl: options.api, log: quiet, userAgent: "ferry" });
  const { owner, repo } = options;
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      const status = (err as { status?: unknown }).status;
      throw forgeFailure("github", what, typeof status === "number" && status > 0 ? status : undefined);
    }
  };
  return {
    async findOpen(head, base, signal) {
      const { data } = await call("listing pull requests", () =>
        octokit.rest.pulls.list({
          owner,
          repo,
          state: "open",
          head: `${owner}:${head}`,
          base,
          sort: "created",
          direction: "asc",
          per_page: 10,
          request: { signal },
        }),
      );
      const first = data[0];
      return first === undefined ? undefined : view(first);
    },
    async open(input, signal) {
      const { data } = await call("opening a pull request", () =>
        octokit.rest.pulls.create({
          owner,
          repo,
          head: input.head,
          base: input.base,
          title: input.title,
          body: input.body,
          request: { signal },
        }),
      );
      return view(data);
    },
    async get(number, signal) {
      const { data } = await call(`reading pull request #${number}`, () =>
        octokit.rest.pulls.get({ owner, repo, pull_number: number, request: { signal } }),
      );
      return view(data);
    },
  };
}
