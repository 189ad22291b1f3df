/** Merge requests on GitLab through `@gitbeaker/rest`. */
import { Gitlab } from "@gitbeaker/rest";
import { type Forge, forgeFailure, type PullRequestView } from "./forge.ts";

/** Where a GitLab project's merge requests are. */
export interface GitlabForgeOptions {
  /** GitLab's URL (`https://gitlab.example.com`); a trailing `/api/v4` is accepted and dropped. */
  api: string;
  /** The project's id or full path (`group/project`). */
  project: string;
  token: string;
}

interface GitlabMergeRequest {
  iid: number;
  web_url: string;
  state: string;
  merge_commit_sha?: string | null;
  squash_commit_sha?: string | null;
}

function view(mr: GitlabMergeRequest): PullRequestView {
  const merged = mr.state === "merged";
  const sha = mr.merge_commit_sha ?? mr.squash_commit_sha ?? undefined;
  return {
    number: mr.iid,
    url: mr.web_url,
    state: merged ? "merged" : mr.state === "opened" || mr.state === "locked" ? "open" : "closed",
    ...(merged && sha ? { mergeSha: sha } : {}),
  };
}

function statusOf(err: unknown): number | undefined {
  const response = (err as { cause?: { response?: { status?: unknown } } }).cause?.response;
  return typeof response?.status === "number" ? response.status : undefined;
}

/** A {@link Forge} over GitLab's REST API v4. */
export function gitlabForge(options: GitlabForgeOptions): Forge {
  const host = options.api.replace(/\/+$/, "").replace(/\/api\/v4$/, "");
  const api = new Gitlab({ host, token: options.token, queryTimeout: 30_000 });
  const project = options.project;
  const call = async <T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> => {
    signal.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      signal.throwIfAborted();
      throw forgeFailure("gitlab", what, statusOf(err));
    }
  };
  return {
    async findOpen(head, base, signal) {
      const list = (await call("listing merge requests", signal, () =>
        api.MergeRequests.all({
          projectId: project,
          sourceBranch: head,
          targetBranch: base,
          state: "opened",
          orderBy: "created_at",
          sort: "asc",
          perPage: 10,
          maxPages: 1,
        }),
      )) as unknown as GitlabMergeRequest[];
      const first = list[0];
      return first === undefined ? undefined : view(first);
    },
    async open(input, signal) {
      const mr = (await call("opening a merge request", signal, () =>
        api.MergeRequests.create(project, input.head, input.base, input.title, {
          description: input.body,
        }),
      )) as unknown as GitlabMergeRequest;
      return view(mr);
    },
    async get(number, signal) {
      const mr = (await call(`reading merge request !${number}`, signal, () =>
        api.MergeRequests.show(project, number),
      )) as unknown as GitlabMergeRequest;
      return view(mr);
    },
  };
}
