import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LOOPBACK } from "./net.ts";

/** One request the fake saw; `refused` says why it was not what GitLab documents. */
export interface GitlabFakeRequest {
  method: string;
  path: string;
  status: number;
  refused?: string;
}

/** A merge request as the fake keeps it. */
export interface FakeMergeRequest {
  iid: number;
  source: string;
  target: string;
  title: string;
  description: string;
  state: "opened" | "closed" | "merged";
  mergeSha: string | null;
  createdAt: string;
}

/** A running fake; see {@link startGitlabFake}. */
export interface GitlabFake {
  /** GitLab's URL (the API is under `/api/v4`). */
  url: string;
  project: string;
  mergeRequests: FakeMergeRequest[];
  requests: GitlabFakeRequest[];
  merge(iid: number, sha: string): void;
  close(iid: number): void;
  stop(): Promise<void>;
}

type Kind = "string" | "integer" | "boolean" | "integer[]" | "string[]" | "datetime";
interface Param {
  kind: Kind;
  required?: boolean;
  values?: readonly string[];
}

// The documented parameters of each endpoint served (GitLab REST API v4, "Merge requests API").
const LIST: Record<string, Param> = {
  approved_by_ids: { kind: "integer[]" },
  approver_ids: { kind: "integer[]" },
  approved: { kind: "string", values: ["yes", "no"] },
  assignee_id: { kind: "string" },
  assignee_username: { kind: "string[]" },
  author_id: { kind: "integer" },
  author_username: { kind: "string" },
  created_after: { kind: "datetime" },
  created_before: { kind: "datetime" },
  deployed_after: { kind: "datetime" },
  deployed_before: { kind: "datetime" },
  environment: { kind: "string" },
  iids: { kind: "integer[]" },
  in: { kind: "string" },
  labels: { kind: "string" },
  merge_user_id: { kind: "integer" },
  merge_user_username: { kind: "string" },
  milestone: { kind: "string" },
  my_reaction_emoji: { kind: "string" },
  order_by: {
    kind: "string",
    values: [
      "created_at",
      "updated_at",
      "title",
      "merged_at",
      "label_priority",
      "milestone_due",
      "popularity",
      "priority",
    ],
  },
  page: { kind: "integer" },
  per_page: { kind: "integer" },
  reviewer_id: { kind: "string" },
  reviewer_username: { kind: "string" },
  scope: { kind: "string", values: ["created_by_me", "assigned_to_me", "all"] },
  search: { kind: "string" },
  sort: { kind: "string", values: ["asc", "desc"] },
  source_branch: { kind: "string" },
  state: { kind: "string", values: ["opened", "closed", "locked", "merged", "all"] },
  target_branch: { kind: "string" },
  updated_after: { kind: "datetime" },
  updated_before: { kind: "datetime" },
  view: { kind: "string", values: ["simple"] },
  with_labels_details: { kind: "boolean" },
  with_merge_status_recheck: { kind: "boolean" },
  wip: { kind: "string", values: ["yes", "no"] },
};
const CREATE: Record<string, Param> = {
  source_branch: { kind: "string", required: true },
  target_branch: { kind: "string", required: true },
  title: { kind: "string", required: true },
  allow_collaboration: { kind: "boolean" },
  allow_maintainer_to_push: { kind: "boolean" },
  approvals_before_merge: { kind: "integer" },
  assignee_id: { kind: "integer" },
  assignee_ids: { kind: "integer[]" },
  description: { kind: "string" },
  labels: { kind: "string" },
  merge_after: { kind: "datetime" },
  milestone_id: { kind: "integer" },
  remove_source_branch: { kind: "boolean" },
  reviewer_ids: { kind: "integer[]" },
  squash: { kind: "boolean" },
  target_project_id: { kind: "integer" },
};
const SHOW: Record<string, Param> = {
  include_diverged_commits_count: { kind: "boolean" },
  include_rebase_in_progress: { kind: "boolean" },
  render_html: { kind: "boolean" },
};

class Refusal extends Error {}

function checkValue(name: string, p: Param, value: unknown): void {
  const bad = () => new Refusal(`${name}=${JSON.stringify(value)} is not a valid ${p.kind}`);
  const str = typeof value === "number" || typeof value === "boolean" ? String(value) : value;
  switch (p.kind) {
    case "string":
      if (typeof str !== "string" || str === "") throw bad();
      if (p.values && !p.values.includes(str))
        throw new Refusal(`${name} must be one of ${p.values.join(", ")}`);
      return;
    case "integer":
      if (typeof str !== "string" || !/^\d+$/.test(str)) throw bad();
      return;
    case "boolean":
      if (str !== "true" && str !== "false") throw bad();
      return;
    case "datetime":
      if (typeof str !== "string" || Number.isNaN(Date.parse(str))) throw bad();
      return;
    case "integer[]":
    case "string[]":
      if (!Array.isArray(value) && typeof value !== "string") throw bad();
      return;
  }
}

function checkParams(params: Record<string, unknown>, documented: Record<string, Param>): void {
  for (const [name, value] of Object.entries(params)) {
    const p = documented[name.replace(/\[\]$/, "")];
    if (p === undefined) throw new Refusal(`parameter ${name} is not documented for this endpoint`);
    checkValue(name, p, value);
  }
  for (const [name, p] of Object.entries(documented))
    if (p.required && params[name] === undefined) throw new Refusal(`parameter ${name} is required`);
}

/**
 * A strict fake of GitLab's merge request API for one project: `GET`/`POST
 * /api/v4/projects/:id/merge_requests` and `GET …/merge_requests/:iid`. Each request must carry the
 * `PRIVATE-TOKEN`, name the project by id or URL-encoded path, and use only the parameters GitLab
 * documents for that endpoint, each of its documented type and values; anything else is refused
 * (400, recorded in `requests[].refused`).
 */
export async function startGitlabFake(options: {
  project: string;
  projectId?: number;
  token: string;
}): Promise<GitlabFake> {
  const projectId = options.projectId ?? 42;
  const requests: GitlabFakeRequest[] = [];
  const mergeRequests: FakeMergeRequest[] = [];
  let url = "";

  const json = (mr: FakeMergeRequest) => ({
    id: 5000 + mr.iid,
    iid: mr.iid,
    project_id: projectId,
    title: mr.title,
    description: mr.description,
    state: mr.state,
    created_at: mr.createdAt,
    updated_at: new Date().toISOString(),
    merged_at: mr.state === "merged" ? new Date().toISOString() : null,
    closed_at: mr.state === "closed" ? new Date().toISOString() : null,
    target_branch: mr.target,
    source_branch: mr.source,
    source_project_id: projectId,
    target_project_id: projectId,
    draft: false,
    merge_commit_sha: mr.mergeSha,
    squash_commit_sha: null,
    sha: "0".repeat(40),
    web_url: `${url}/${options.project}/-/merge_requests/${mr.iid}`,
    author: { id: 1, username: "ferry", name: "Ferry", state: "active" },
  });

  function handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const u = new URL(req.url ?? "/", "http://fake.invalid");
    const entry: GitlabFakeRequest = { method: req.method ?? "GET", path: u.pathname + u.search, status: 0 };
    requests.push(entry);
    const send = (status: number, body: unknown, refused?: string) => {
      entry.status = status;
      if (refused !== undefined) entry.refused = refused;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    // The raw path: a project path is one URL-encoded segment (`group%2Fproject`).
    const m = /^\/api\/v4\/projects\/([^/]+)\/merge_requests(?:\/([^/]+))?$/.exec(u.pathname);
    if (m === null) return send(404, { message: "404 Not Found" }, "not an endpoint this fake serves");
    if (req.headers["private-token"] !== options.token) return send(401, { message: "401 Unauthorized" });
    const id = decodeURIComponent(m[1]!);
    if (id !== options.project && id !== String(projectId))
      return send(404, { message: "404 Project Not Found" });
    const query: Record<string, unknown> = {};
    for (const key of new Set(u.searchParams.keys())) {
      const all = u.searchParams.getAll(key);
      query[key] = all.length > 1 ? all : all[0];
    }
    try {
      if (req.method === "GET" && m[2] === undefined) {
        checkParams(query, LIST);
        const list = mergeRequests
          .filter((mr) => query.state === undefined || query.state === "all" || mr.state === query.state)
          .filter((mr) => query.source_branch === undefined || mr.source === query.source_branch)
          .filter((mr) => query.target_branch === undefined || mr.target === query.target_branch);
        return send(200, list.map(json));
      }
      if (req.method === "POST" && m[2] === undefined) {
        let body: Record<string, unknown>;
        const type = req.headers["content-type"] ?? "";
        if (type.startsWith("application/json")) body = JSON.parse(raw) as Record<string, unknown>;
        else if (type.startsWith("application/x-www-form-urlencoded"))
          body = Object.fromEntries(new URLSearchParams(raw));
        else throw new Refusal(`unsupported content type ${type}`);
        checkParams({ ...query, ...body }, CREATE);
        const source = String(body.source_branch);
        const target = String(body.target_branch);
        if (mergeRequests.some((mr) => mr.state === "opened" && mr.source === source && mr.target === target))
          return send(409, {
            message: [`Another open merge request already exists for this source branch: !1`],
          });
        const mr: FakeMergeRequest = {
          iid: mergeRequests.length + 1,
          source,
          target,
          title: String(body.title),
          description: typeof body.description === "string" ? body.description : "",
          state: "opened",
          mergeSha: null,
          createdAt: new Date().toISOString(),
        };
        mergeRequests.push(mr);
        return send(201, json(mr));
      }
      if (req.method === "GET" && m[2] !== undefined) {
        if (!/^\d+$/.test(m[2])) throw new Refusal("merge_request_iid must be an integer");
        checkParams(query, SHOW);
        const mr = mergeRequests.find((x) => x.iid === Number(m[2]));
        return mr === undefined ? send(404, { message: "404 Not found" }) : send(200, json(mr));
      }
      return send(405, { message: "405 Method Not Allowed" }, "not an endpoint this fake serves");
    } catch (err) {
      return send(400, { error: (err as Error).message }, err instanceof Refusal ? err.message : "bad body");
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")));
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, () => resolve()));
  url = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
  return {
    url,
    project: options.project,
    mergeRequests,
    requests,
    merge(iid, sha) {
      Object.assign(mergeRequests.find((mr) => mr.iid === iid)!, { state: "merged", mergeSha: sha });
    },
    close(iid) {
      mergeRequests.find((mr) => mr.iid === iid)!.state = "closed";
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
