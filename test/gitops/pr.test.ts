import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import type { Json } from "../support/ferry-serve.ts";
import { git, startGitServer, type TestGitServer } from "../support/git-server.ts";
import { type GithubFake, startGithubFake } from "../support/github-fake.ts";
import { type GitlabFake, startGitlabFake } from "../support/gitlab-fake.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";
const GIT_TOKEN = "pr-git-t0ken";
const GH_TOKEN = "ghp_fakeGithubToken000";
const GL_TOKEN = "glpat-fakeGitlabToken0";
const kustomization = (image: string) =>
  `kind: Kustomization\nimages:\n  - name: ${image}\n    newName: old.example/${image}\n    newTag: v1\n`;

let source: TestRegistry;
let github: OidcIssuer;
let gitServer: TestGitServer;
let gh: GithubFake;
let gl: GitlabFake;
let images: SignedImage[];
let ferry: TestFerry;
let work: string;

const token = () => github.sign(githubClaims({ iss: github.url, aud: AUD }));
async function call(method: string, route: string, body?: unknown) {
  const { status, json } = await callApi(ferry, await token(), method, route, body);
  return { status, json: json as Json };
}
async function ask(app: string, digest: string): Promise<string> {
  const asked = await call("POST", "/v1/promotions", { app, digest, to: "production" });
  expect(asked.status, JSON.stringify(asked.json)).toBe(201);
  return asked.json.id as string;
}
async function until(id: string, done: (p: Json) => boolean): Promise<Json> {
  // A waiting step is looked at every pollInterval, so long-polls come back often: many rounds.
  for (let i = 0; i < 300; i++) {
    const { json } = await call("GET", `/v1/promotions/${id}?wait=2s`);
    if (done(json)) return json;
  }
  throw new Error(`promotion ${id} never got there`);
}
const gitopsStep = (p: Json) => p.steps.find((s: Json) => s.name === "gitops");
const awaitingMerge = (p: Json) => gitopsStep(p)?.status === "waiting";
const finished = (p: Json) => ["promoted", "failed"].includes(p.state);

/** The stored step's data (kept on the record, not shown in the resource). */
async function stepData(id: string): Promise<Json> {
  const row = await ferry.store.db
    .selectFrom("promotions")
    .select("steps")
    .where("id", "=", id)
    .executeTakeFirstOrThrow();
  return (JSON.parse(row.steps as string) as Json[]).find((s) => s.name === "gitops")!.data;
}

/** Merges `branch` into main of the bare repo as a forge would (a merge commit), returning its sha. */
async function mergeInGit(repo: string, branch: string): Promise<string> {
  const dir = mkdtempSync(path.join(work, "merge-"));
  const at = async (args: string[], cwd = path.join(dir, "repo")) => {
    const r = await git(args, { cwd, home: dir });
    if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await at(["clone", "--quiet", gitServer.url(repo), "repo"], dir);
  await at(["merge", "--quiet", "--no-ff", "-m", `Merge ${branch}`, `origin/${branch}`]);
  await at(["push", "--quiet", "origin", "main"]);
  return at(["rev-parse", "HEAD"]);
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "ferry-gitops-pr-"));
  [source, github, gitServer, gh, gl] = await Promise.all([
    startRegistry(),
    startOidcIssuer(),
    startGitServer({ username: "ferry", password: GIT_TOKEN }),
    startGithubFake({ owner: "acme", repo: "deploy", token: GH_TOKEN }),
    startGitlabFake({ project: "acme/deploy", token: GL_TOKEN }),
  ]);
  const first = await pushSignedImage(source, "prod/web", work, { bundle: false });
  images = [first, await pushSignedImage(source, "prod/web", work, { bundle: false, keys: first.keys })];
  for (const repo of ["gh", "gl"])
    await gitServer.createRepo(repo, {
      "web.yaml": kustomization("web"),
      "api.yaml": kustomization("api"),
      "worker.yaml": kustomization("worker"),
    });
  const githubPr = (extra: Record<string, unknown> = {}) => ({
    forge: "github",
    api: gh.url,
    owner: "acme",
    repo: "deploy",
    token: GH_TOKEN,
    pollInterval: "200ms",
    ...extra,
  });
  const target = (repo: string, file: string, pullRequest: Record<string, unknown>) => ({
    repo: `${gitServer.baseUrl}/${repo}.git`,
    auth: { token: GIT_TOKEN, username: "ferry" },
    path: `${file}.yaml`,
    kind: "kustomize",
    image: file,
    mode: "pull-request",
    pullRequest,
  });
  const app = (name: string, gitops: Record<string, unknown>) => ({
    name,
    images: { production: `${source.host}/prod/web` },
    pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
    gitops: { production: gitops },
  });
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: source.url }],
    trust: { authorities: [{ name: "ci", key: first.keys.publicKeyPath }] },
    environments: [
      { name: "production", require: { signature: { authorities: ["ci"] } }, evidence: { summary: false } },
    ],
    promotion: { pollInterval: "200ms" },
    apps: [
      app("web", target("gh", "web", githubPr())),
      app("api", target("gh", "api", githubPr({ timeout: "3s" }))),
      app("worker", target("gh", "worker", githubPr())),
      app(
        "glweb",
        target("gl", "web", {
          forge: "gitlab",
          api: gl.url,
          project: "acme/deploy",
          token: GL_TOKEN,
          pollInterval: "200ms",
        }),
      ),
    ],
  });
}, 120_000);

afterAll(async () => {
  await ferry?.close();
  await Promise.all([source?.stop(), github?.stop(), gitServer?.stop(), gh?.stop(), gl?.stop()]);
});

describe("gitops pull-request mode against strict forge fakes (the branch on a real git server)", () => {
  it("GitHub: opens a pull request from ferry/<app>/<env>, waits (awaiting_merge), and is promoted once it is merged", async () => {
    const main = (await gitServer.log("gh", "main"))[0]!.sha;
    const id = await ask("web", images[0]!.digest);
    const waiting = await until(id, (p) => awaitingMerge(p) || finished(p));
    expect(waiting.state, JSON.stringify(waiting)).toBe("running");
    expect(gitopsStep(waiting)).toMatchObject({ status: "waiting", reason: "awaiting_merge" });
    expect(gh.pulls).toHaveLength(1);
    expect(gh.pulls[0]).toMatchObject({
      number: 1,
      head: "ferry/web/production",
      base: "main",
      state: "open",
    });
    expect(gh.pulls[0]!.title).toBe(`Promote web to production: ${images[0]!.digest.slice(7, 19)}`);
    expect(gh.pulls[0]!.body).toContain(`Ferry-Promotion: ${id}`);
    // The branch holds exactly one commit on top of main's head; main itself is untouched.
    const [branchHead, parent] = await gitServer.log("gh", "ferry/web/production");
    expect(parent!.sha).toBe(main);
    expect(branchHead!.body).toContain(`Ferry-Promotion: ${id}`);
    expect(await gitServer.readFile("gh", "ferry/web/production", "web.yaml")).toContain(
      `digest: ${images[0]!.digest}`,
    );
    expect((await gitServer.log("gh", "main"))[0]!.sha).toBe(main);

    const merged = await mergeInGit("gh", "ferry/web/production");
    gh.merge(1, merged);
    const done = await until(id, finished);
    expect(done.state).toBe("promoted");
    expect(await stepData(id)).toMatchObject({
      pullRequest: `${gh.url}/acme/deploy/pull/1`,
      number: 1,
      mergeSha: merged,
      head: "ferry/web/production",
      branch: "main",
      commit: branchHead!.sha,
    });
    // Drift agrees once the merge is on main.
    const drift = await call("GET", "/v1/apps/web/environments/production/drift");
    expect(drift.json).toMatchObject({ inSync: true, git: { digest: images[0]!.digest, commit: merged } });
  });

  it("GitHub: an open pull request for the branch is reused (never duplicated); the branch is force-updated", async () => {
    const first = await ask("api", images[0]!.digest);
    const timedOut = await until(first, finished);
    expect(timedOut.state).toBe("failed");
    expect(timedOut.result.reason).toBe("gitops_pr_timeout");
    const apiPulls = () => gh.pulls.filter((p) => p.head === "ferry/api/production");
    expect(apiPulls()).toHaveLength(1);
    expect(apiPulls()[0]!.state).toBe("open");

    const second = await ask("api", images[1]!.digest);
    await until(second, (p) => awaitingMerge(p) || finished(p));
    expect(apiPulls()).toHaveLength(1);
    expect(await stepData(second)).toMatchObject({ number: apiPulls()[0]!.number });
    // The branch now carries the second digest, in one commit on main.
    const [head, parent] = await gitServer.log("gh", "ferry/api/production");
    expect(head!.body).toContain(`Ferry-Promotion: ${second}`);
    expect(parent!.sha).toBe((await gitServer.log("gh", "main"))[0]!.sha);
    expect(await gitServer.readFile("gh", "ferry/api/production", "api.yaml")).toContain(images[1]!.digest);
    gh.merge(apiPulls()[0]!.number, await mergeInGit("gh", "ferry/api/production"));
    expect((await until(second, finished)).state).toBe("promoted");
    // One create per pull request: the second promotion found the open one and asked for no other.
    expect(gh.requests.filter((r) => r.method === "POST")).toHaveLength(gh.pulls.length);
    expect(gh.requests.filter((r) => r.status === 422)).toEqual([]);
  });

  it("GitHub: a closed pull request fails the promotion (gitops_pr_closed)", async () => {
    const id = await ask("worker", images[0]!.digest);
    await until(id, awaitingMerge);
    const pull = gh.pulls.find((p) => p.head === "ferry/worker/production")!;
    gh.close(pull.number);
    const done = await until(id, finished);
    expect(done.state).toBe("failed");
    expect(done.result.reason).toBe("gitops_pr_closed");
    expect(gitopsStep(done)).toMatchObject({ status: "failed", reason: "gitops_pr_closed" });
  });

  it("GitLab: opens a merge request and is promoted once it is merged", async () => {
    const id = await ask("glweb", images[1]!.digest);
    await until(id, awaitingMerge);
    expect(gl.mergeRequests).toHaveLength(1);
    expect(gl.mergeRequests[0]).toMatchObject({
      iid: 1,
      source: "ferry/glweb/production",
      target: "main",
      state: "opened",
    });
    const merged = await mergeInGit("gl", "ferry/glweb/production");
    gl.merge(1, merged);
    expect((await until(id, finished)).state).toBe("promoted");
    expect(await stepData(id)).toMatchObject({
      pullRequest: `${gl.url}/acme/deploy/-/merge_requests/1`,
      mergeSha: merged,
    });
  });

  it("the fakes refuse what the API descriptions do not allow", async () => {
    const before = { gh: gh.requests.length, gl: gl.requests.length };
    const github = (route: string, init: RequestInit = {}) =>
      fetch(`${gh.url}${route}`, {
        ...init,
        headers: { authorization: `token ${GH_TOKEN}`, "content-type": "application/json" },
      });
    expect((await github("/repos/acme/deploy/pulls?bogus=1")).status).toBe(400);
    expect((await github("/repos/acme/deploy/pulls?per_page=many")).status).toBe(400);
    expect(
      (await github("/repos/acme/deploy/pulls", { method: "POST", body: JSON.stringify({ head: 7 }) }))
        .status,
    ).toBe(400);
    expect((await github("/repos/acme/deploy/pulls/1/merge", { method: "PUT" })).status).toBe(404);
    const gitlab = (route: string) =>
      fetch(`${gl.url}/api/v4${route}`, { headers: { "private-token": GL_TOKEN } });
    expect((await gitlab("/projects/acme%2Fdeploy/merge_requests?bogus=1")).status).toBe(400);
    expect((await gitlab("/projects/acme%2Fdeploy/merge_requests?state=open")).status).toBe(400);
    expect(gh.requests.slice(before.gh).every((r) => r.refused !== undefined)).toBe(true);
    expect(gl.requests.slice(before.gl).every((r) => r.refused !== undefined)).toBe(true);
    gh.requests.splice(before.gh);
    gl.requests.splice(before.gl);
  });

  it("every request the fakes saw was one their API descriptions allow, and no token reached the log", () => {
    expect(gh.problems).toEqual([]);
    expect(gh.requests.filter((r) => r.refused !== undefined)).toEqual([]);
    expect(gh.requests.length).toBeGreaterThan(5);
    expect(gl.requests.filter((r) => r.refused !== undefined)).toEqual([]);
    expect(gl.requests.length).toBeGreaterThan(2);
    const log = ferry.logText();
    for (const secret of [GIT_TOKEN, GH_TOKEN, GL_TOKEN]) expect(log).not.toContain(secret);
  });
});
