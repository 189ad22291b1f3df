import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { LOOPBACK } from "./net.ts";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** One request the fake saw, and whether it was served or refused (and why). */
export interface GithubFakeRequest {
  method: string;
  path: string;
  status: number;
  /** Why the fake refused it: it is not what GitHub's OpenAPI description allows. */
  refused?: string;
}

/** A pull request as the fake keeps it. */
export interface FakePull {
  number: number;
  head: string;
  base: string;
  title: string;
  body: string;
  state: "open" | "closed";
  merged: boolean;
  mergeSha: string | null;
  createdAt: string;
}

/** A running fake; see {@link startGithubFake}. */
export interface GithubFake {
  /** The API base URL (`baseUrl` of Octokit). */
  url: string;
  owner: string;
  repo: string;
  pulls: FakePull[];
  requests: GithubFakeRequest[];
  /** Responses the fake made that its own validation found outside the description (a fake bug). */
  problems: string[];
  merge(number: number, sha: string): void;
  close(number: number): void;
  stop(): Promise<void>;
}

type Json = Record<string, unknown>;

interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema: Json }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Json }> };
  responses: Record<
    string,
    { content?: Record<string, { schema: Json; examples?: Record<string, { value: unknown }> }> }
  >;
}

interface Description {
  paths: Record<string, Record<string, Operation>>;
}

let description: Description | undefined;

/** GitHub's own OpenAPI description of api.github.com (`@octokit/openapi`, dereferenced), read once. */
function githubDescription(): Description {
  if (description === undefined) {
    const require = createRequire(import.meta.url);
    const file = require.resolve("@octokit/openapi/generated/api.github.com.deref.json");
    description = JSON.parse(readFileSync(file, "utf8")) as Description;
  }
  return description;
}

const ROUTES = [
  { template: "/repos/{owner}/{repo}/pulls", methods: ["get", "post"] },
  { template: "/repos/{owner}/{repo}/pulls/{pull_number}", methods: ["get"] },
] as const;

function matchRoute(path: string): { template: string; params: Record<string, string> } | undefined {
  for (const route of ROUTES) {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${route.template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
        names.push(name);
        return "([^/]+)";
      })}$`,
    );
    const m = pattern.exec(path);
    if (m)
      return {
        template: route.template,
        params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])),
      };
  }
  return undefined;
}

class Refusal extends Error {}

/**
 * A strict fake of GitHub's pull request API for one repository. Every request is checked against
 * GitHub's OpenAPI description from `@octokit/openapi`: the operation must exist there and be one
 * the fake serves, every path and query parameter must be described (unknown ones are refused) and
 * valid by its schema, the JSON body must be valid by the request schema and carry no property the
 * schema does not name; every answer is validated against the operation's documented response for
 * its status (an undocumented status or an invalid body is recorded in `problems`, a fake bug).
 * Responses start from the description's own example, so they carry every field GitHub sends.
 */
export async function startGithubFake(options: {
  owner: string;
  repo: string;
  token: string;
}): Promise<GithubFake> {
  const spec = githubDescription();
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: false });
  addFormats(ajv);
  const validators = new Map<object, ValidateFunction>();
  const validatorOf = (schema: Json) => {
    let v = validators.get(schema);
    if (v === undefined) {
      v = ajv.compile(schema);
      validators.set(schema, v);
    }
    return v;
  };
  const requests: GithubFakeRequest[] = [];
  const problems: string[] = [];
  const pulls: FakePull[] = [];
  let baseUrl = "";

  const example = (op: Operation, status: string): Json => {
    const content = op.responses[status]?.content?.["application/json"];
    const value = Object.values(content?.examples ?? {})[0]?.value;
    return structuredClone((Array.isArray(value) ? value[0] : value) as Json);
  };

  const pullJson = (op: Operation, status: string, pull: FakePull): Json => {
    const base = example(op, status);
    const html = `${baseUrl}/${options.owner}/${options.repo}/pull/${pull.number}`;
    const ref = (side: Json, name: string) => ({ ...side, ref: name, label: `${options.owner}:${name}` });
    return {
      ...base,
      number: pull.number,
      id: 1000 + pull.number,
      html_url: html,
      url: `${baseUrl}/repos/${options.owner}/${options.repo}/pulls/${pull.number}`,
      state: pull.state,
      title: pull.title,
      body: pull.body,
      head: ref(base.head as Json, pull.head),
      base: ref(base.base as Json, pull.base),
      created_at: pull.createdAt,
      merged_at: pull.merged ? new Date().toISOString() : null,
      closed_at: pull.state === "closed" ? new Date().toISOString() : null,
      merge_commit_sha: pull.mergeSha,
      // The description's example lists teams without the `type` its own schema requires.
      requested_teams: [],
      requested_reviewers: [],
      ...("merged" in base ? { merged: pull.merged } : {}),
    };
  };

  function checkParameters(op: Operation, pathParams: Record<string, string>, query: URLSearchParams): void {
    const described = op.parameters ?? [];
    for (const name of new Set(query.keys())) {
      if (!described.some((p) => p.in === "query" && p.name === name))
        throw new Refusal(`query parameter ${name} is not described`);
    }
    for (const p of described) {
      const raw =
        p.in === "path"
          ? pathParams[p.name]
          : p.in === "query"
            ? (query.get(p.name) ?? undefined)
            : undefined;
      if (raw === undefined) {
        if (p.required && (p.in === "path" || p.in === "query"))
          throw new Refusal(`parameter ${p.name} is required`);
        continue;
      }
      const value = p.schema.type === "integer" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      if (!validatorOf(p.schema)(value))
        throw new Refusal(`parameter ${p.name}=${raw} is not valid by its schema`);
    }
  }

  function checkBody(op: Operation, body: unknown): void {
    const schema = op.requestBody?.content["application/json"]?.schema;
    if (schema === undefined) {
      if (body !== undefined) throw new Refusal("this operation takes no body");
      return;
    }
    if (body === undefined) {
      if (op.requestBody?.required) throw new Refusal("a body is required");
      return;
    }
    const v = validatorOf(schema);
    if (!v(body)) throw new Refusal(`the body is not valid: ${ajv.errorsText(v.errors)}`);
    const props = (schema.properties ?? {}) as Json;
    for (const key of Object.keys(body as Json))
      if (!(key in props)) throw new Refusal(`body property ${key} is not described`);
  }

  function respond(
    res: ServerResponse,
    op: Operation,
    status: number,
    body: unknown,
    entry: GithubFakeRequest,
  ) {
    const documented = op.responses[String(status)];
    if (documented === undefined)
      problems.push(`${entry.method} ${entry.path}: status ${status} is not documented`);
    else {
      const schema = documented.content?.["application/json"]?.schema;
      if (schema !== undefined) {
        const v = validatorOf(schema);
        if (!v(body)) problems.push(`${entry.method} ${entry.path} ${status}: ${ajv.errorsText(v.errors)}`);
      }
    }
    entry.status = status;
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  }

  function refuse(res: ServerResponse, entry: GithubFakeRequest, status: number, why: string) {
    entry.status = status;
    entry.refused = why;
    res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify({ message: why, documentation_url: "https://docs.github.com/rest" }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const url = new URL(req.url ?? "/", "http://fake.invalid");
    const method = (req.method ?? "GET").toLowerCase();
    const entry: GithubFakeRequest = {
      method: method.toUpperCase(),
      path: url.pathname + url.search,
      status: 0,
    };
    requests.push(entry);
    const route = matchRoute(url.pathname);
    const op = route === undefined ? undefined : spec.paths[route.template]?.[method];
    if (route === undefined || op === undefined)
      return refuse(res, entry, 404, "not an operation this fake serves");
    const auth = req.headers.authorization ?? "";
    if (auth !== `token ${options.token}` && auth !== `Bearer ${options.token}`)
      return refuse(res, entry, 401, "Bad credentials");
    if (route.params.owner !== options.owner || route.params.repo !== options.repo)
      return respond(
        res,
        op,
        404,
        { message: "Not Found", documentation_url: "https://docs.github.com/rest" },
        entry,
      );
    let body: unknown;
    try {
      body = raw === "" ? undefined : JSON.parse(raw);
      checkParameters(op, route.params, url.searchParams);
      checkBody(op, body);
    } catch (err) {
      return refuse(res, entry, 400, err instanceof Refusal ? err.message : "the body is not JSON");
    }
    if (route.template.endsWith("/pulls") && method === "get") {
      const q = url.searchParams;
      const state = q.get("state") ?? "open";
      const head = q.get("head");
      const list = pulls
        .filter((p) => state === "all" || p.state === state)
        .filter((p) => head === null || `${options.owner}:${p.head}` === head)
        .filter((p) => q.get("base") === null || p.base === q.get("base"))
        .slice(0, Number(q.get("per_page") ?? 30));
      return respond(
        res,
        op,
        200,
        list.map((p) => pullJson(op, "200", p)),
        entry,
      );
    }
    if (route.template.endsWith("/pulls") && method === "post") {
      const b = body as { head: string; base: string; title?: string; body?: string };
      if (pulls.some((p) => p.state === "open" && p.head === b.head && p.base === b.base))
        return respond(
          res,
          op,
          422,
          {
            message: "Validation Failed",
            errors: [
              {
                resource: "PullRequest",
                code: "custom",
                message: `A pull request already exists for ${options.owner}:${b.head}.`,
              },
            ],
            documentation_url: "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
          },
          entry,
        );
      const pull: FakePull = {
        number: pulls.length + 1,
        head: b.head,
        base: b.base,
        title: b.title ?? "",
        body: b.body ?? "",
        state: "open",
        merged: false,
        mergeSha: null,
        createdAt: new Date().toISOString(),
      };
      pulls.push(pull);
      return respond(res, op, 201, pullJson(op, "201", pull), entry);
    }
    const pull = pulls.find((p) => p.number === Number(route.params.pull_number));
    if (pull === undefined)
      return respond(
        res,
        op,
        404,
        { message: "Not Found", documentation_url: "https://docs.github.com/rest" },
        entry,
      );
    return respond(res, op, 200, pullJson(op, "200", pull), entry);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((err: unknown) => {
        problems.push(`fake crashed: ${(err as Error).stack}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, () => resolve()));
  baseUrl = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
  return {
    url: baseUrl,
    owner: options.owner,
    repo: options.repo,
    pulls,
    requests,
    problems,
    merge(number, sha) {
      const pull = pulls.find((p) => p.number === number)!;
      Object.assign(pull, { state: "closed", merged: true, mergeSha: sha });
    },
    close(number) {
      pulls.find((p) => p.number === number)!.state = "closed";
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
