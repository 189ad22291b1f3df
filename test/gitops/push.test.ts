import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import type { Json } from "../support/ferry-serve.ts";
import { git, startGitServer, type TestGitServer } from "../support/git-server.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";
const TOKEN = "gitops-Secret-t0ken-0123456789";

const KUSTOMIZATION = `# production overlay: edited by Ferry
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base # the base
images:
  # the web front end
  - name: web
    newName: old.example/web
    newTag: "1.4.1" # was pinned by tag
  - name: api # keep me
    newName: old.example/api
    newTag: v9
`;
const VALUES = `# Helm values
worker:
  image:
    repository: old.example/worker   # set by Ferry
    digest: ""
    tag: v1
  replicas: 3
`;

let source: TestRegistry;
let github: OidcIssuer;
let gitServer: TestGitServer;
let proxy: FaultProxy;
let signed: SignedImage;
let ferry: TestFerry;
let work: string;

const token = () => github.sign(githubClaims({ iss: github.url, aud: AUD }));
async function call(method: string, route: string, body?: unknown) {
  const { status, json } = await callApi(ferry, await token(), method, route, body);
  return { status, json: json as Json };
}
async function promote(app: string, digest = signed.digest): Promise<Json> {
  const asked = await call("POST", "/v1/promotions", { app, digest, to: "production" });
  expect(asked.status, JSON.stringify(asked.json)).toBe(201);
  for (let i = 0; i < 60; i++) {
    const { json } = await call("GET", `/v1/promotions/${asked.json.id}?wait=2s`);
    if (["promoted", "failed"].includes(json.state)) return json;
  }
  throw new Error("the promotion never finished");
}

/** A clone of the bare repo (through the server, with its credentials) for foreign commits. */
async function foreignCommit(file: string, edit: (text: string) => string, message: string): Promise<string> {
  const dir = mkdtempSync(path.join(work, "foreign-"));
  const run = async (args: string[]) => {
    const r = await git(args, { cwd: dir, home: dir });
    if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await run(["clone", "--quiet", gitServer.url("deploy"), "repo"]);
  const repo = path.join(dir, "repo");
  const at = (args: string[]) => git(args, { cwd: repo, home: dir });
  writeFileSync(path.join(repo, file), edit(readFileSync(path.join(repo, file), "utf8")));
  await at(["commit", "--quiet", "-am", message]);
  const pushed = await at(["push", "--quiet", "origin", "main"]);
  if (pushed.code !== 0) throw new Error(pushed.stderr);
  return (await at(["rev-parse", "HEAD"])).stdout.trim();
}

/** The lines a commit changed in `file`, as `-old` / `+new`. */
async function changedLines(sha: string, file: string): Promise<string[]> {
  const out = await git(
    [
      "--git-dir",
      path.join(gitServer.root, "deploy.git"),
      "show",
      "--format=",
      "--unified=0",
      sha,
      "--",
      file,
    ],
    {
      home: work,
    },
  );
  return out.stdout.split("\n").filter((l) => /^[-+][^-+]/.test(l) || /^[-+]$/.test(l));
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "ferry-gitops-push-"));
  [source, github, gitServer] = await Promise.all([
    startRegistry(),
    startOidcIssuer(),
    startGitServer({ username: "ferry", password: TOKEN }),
  ]);
  proxy = await startFaultProxy(gitServer.baseUrl);
  signed = await pushSignedImage(source, "prod/web", work, { bundle: false });
  await gitServer.createRepo("deploy", {
    "prod/kustomization.yaml": KUSTOMIZATION,
    "prod/values.yaml": VALUES,
    "prod/pinned.yaml": `image: ${source.host}/prod/web@${signed.digest}\n`,
    "prod/gone.yaml": "image: old.example/gone:v1\n",
  });
  const target = (extra: Record<string, unknown>) => ({
    repo: `${proxy.url}/deploy.git`,
    auth: { token: TOKEN, username: "ferry" },
    author: { name: "Ferry Bot", email: "ferry@example.test" },
    ...extra,
  });
  const repo = `${source.host}/prod/web`;
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: source.url }],
    trust: { authorities: [{ name: "ci", key: signed.keys.publicKeyPath }] },
    // The evidence step (docs/evidence.md) is not what these tests are about.
    environments: [
      { name: "production", require: { signature: { authorities: ["ci"] } }, evidence: { summary: false } },
    ],
    promotion: { pollInterval: "200ms" },
    gitops: { pushRetries: 3 },
    apps: [
      ["web", target({ path: "prod/kustomization.yaml", kind: "kustomize", image: "web" })],
      ["api", target({ path: "prod/kustomization.yaml", kind: "kustomize", image: "api", keepTag: true })],
      [
        "worker",
        target({
          path: "prod/values.yaml",
          kind: "helm-values",
          repository: "worker.image.repository",
          digest: "worker.image.digest",
          message: "deploy({app}): {shortDigest} for {requestedBy}",
        }),
      ],
      ["pinned", target({ path: "prod/pinned.yaml", kind: "yaml", field: "image" })],
      ["missing", target({ path: "prod/kustomization.yaml", kind: "kustomize", image: "nope" })],
      ["nofile", target({ path: "prod/absent.yaml", kind: "yaml", field: "image" })],
      ["gone", target({ path: "prod/gone.yaml", kind: "yaml", field: "image" })],
    ].map(([name, gitops]) => ({
      name,
      images: { production: repo },
      pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      gitops: { production: gitops },
    })),
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([source?.stop(), github?.stop(), gitServer?.stop(), proxy?.stop()]);
});

describe("gitops push mode (real git http-backend, Basic auth with a token)", () => {
  it("commits the digest with Ferry's trailers, touching only the image's lines", async () => {
    const before = (await gitServer.log("deploy", "main"))[0]!;
    const done = await promote("web");
    expect(done.state).toBe("promoted");
    const step = done.steps.find((s: Json) => s.name === "gitops");
    expect(step).toMatchObject({ status: "done", attempts: 1 });
    const [commit] = await gitServer.log("deploy", "main");
    expect(commit!.sha).not.toBe(before.sha);
    expect(commit).toMatchObject({
      subject: `Promote web to production: ${signed.digest.slice(7, 19)}`,
      authorName: "Ferry Bot",
      authorEmail: "ferry@example.test",
    });
    expect(commit!.body).toBe(
      [
        `Ferry-Promotion: ${done.id}`,
        `Ferry-Digest: ${signed.digest}`,
        "Ferry-App: web",
        "Ferry-Environment: production",
      ].join("\n"),
    );
    expect(await changedLines(commit!.sha, "prod/kustomization.yaml")).toEqual([
      "-    newName: old.example/web",
      '-    newTag: "1.4.1" # was pinned by tag',
      `+    newName: ${source.host}/prod/web`,
      `+    digest: ${signed.digest}`,
    ]);
    const text = await gitServer.readFile("deploy", "main", "prod/kustomization.yaml");
    expect(text).toContain("  - name: api # keep me\n    newName: old.example/api\n    newTag: v9\n");
    // The credential is nowhere in the log, nor in the working copy's git config.
    expect(ferry.logText()).not.toContain(TOKEN);
    const repos = path.join(ferry.dir, "gitops", "repos");
    for (const copy of readdirSync(repos))
      expect(readFileSync(path.join(repos, copy, ".git", "config"), "utf8")).not.toContain(TOKEN);
  });

  it("a template message, helm values: the message is filled in and the trailers appended", async () => {
    const done = await promote("worker");
    expect(done.state).toBe("promoted");
    const [commit] = await gitServer.log("deploy", "main");
    expect(commit!.subject).toBe(`deploy(worker): ${signed.digest.slice(7, 19)} for octocat (github)`);
    expect(commit!.body).toContain(`Ferry-Promotion: ${done.id}\n`);
    expect(await changedLines(commit!.sha, "prod/values.yaml")).toEqual([
      "-    repository: old.example/worker   # set by Ferry",
      '-    digest: ""',
      `+    repository: ${source.host}/prod/web   # set by Ferry`,
      `+    digest: "${signed.digest}"`,
    ]);
  });

  it("a file that already pins the digest: done, unchanged, and no commit", async () => {
    const before = await gitServer.log("deploy", "main");
    const done = await promote("pinned");
    expect(done.state).toBe("promoted");
    const step = done.steps.find((s: Json) => s.name === "gitops");
    expect(step.status).toBe("done");
    expect(step.message).toContain("already pins");
    expect(await gitServer.log("deploy", "main")).toHaveLength(before.length);
  });

  it("an image the kustomization does not list, or a missing file: failed with the reason, nothing written", async () => {
    const before = await gitServer.log("deploy", "main");
    const missing = await promote("missing");
    expect(missing.state).toBe("failed");
    expect(missing.result.reason).toBe("gitops_path_missing");
    expect(missing.result.message).toContain("nope");
    const nofile = await promote("nofile");
    expect(nofile.result.reason).toBe("gitops_path_missing");
    expect(nofile.result.message).toContain("prod/absent.yaml");
    expect(await gitServer.log("deploy", "main")).toHaveLength(before.length);
  });

  it("a push rejected because someone pushed first: re-applied on the new head, the foreign commit kept", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    proxy.addFault({
      // The push's ref advertisement: git then sees the foreign head and refuses a non-fast-forward.
      match: (r) => r.method === "GET" && r.path.endsWith("/info/refs?service=git-receive-pack"),
      action: { kind: "hold", until: released },
      times: 1,
    });
    const asked = await call("POST", "/v1/promotions", {
      app: "api",
      digest: signed.digest,
      to: "production",
    });
    await expect.poll(() => proxy.count((r) => r.faulted), { timeout: 30_000 }).toBe(1);
    // While Ferry's push is held, another writer changes the same file (another entry).
    const foreign = await foreignCommit(
      "prod/kustomization.yaml",
      (t) =>
        t.replace(
          "resources:\n  - ../base # the base\n",
          "resources:\n  - ../base # the base\n  - extra.yaml\n",
        ),
      "add a resource",
    );
    release();
    let done: Json = {};
    for (let i = 0; i < 60 && !["promoted", "failed"].includes(done.state); i++)
      done = (await call("GET", `/v1/promotions/${asked.json.id}?wait=2s`)).json;
    expect(done.state).toBe("promoted");
    expect(
      done.steps.find((s: Json) => s.name === "gitops"),
      JSON.stringify(done.steps),
    ).toMatchObject({
      attempts: 1,
    });
    const [mine, theirs] = await gitServer.log("deploy", "main");
    expect(theirs!.sha).toBe(foreign);
    expect(mine!.body).toContain(`Ferry-Promotion: ${asked.json.id}`);
    const parents = await git(
      ["--git-dir", path.join(gitServer.root, "deploy.git"), "rev-list", "--parents", "-n", "1", mine!.sha],
      {
        home: work,
      },
    );
    expect(parents.stdout.trim().split(" ")).toEqual([mine!.sha, foreign]);
    const text = await gitServer.readFile("deploy", "main", "prod/kustomization.yaml");
    expect(text).toContain("  - extra.yaml\n");
    expect(text).toContain(
      `  - name: api # keep me\n    newName: ${source.host}/prod/web\n    digest: ${signed.digest}\n    newTag: v9\n`,
    );
    const metrics = await (await fetch(`${ferry.url}/metrics`)).text();
    expect(
      metrics,
      metrics
        .split("\n")
        .filter((l) => l.includes("gitops"))
        .join("\n"),
    ).toMatch(/^ferry_gitops_push_rejections_total 1$/m);
  });

  it("a rejected push whose re-applied edit no longer applies (the file stopped parsing) is final with the reason", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    proxy.clearRequests();
    proxy.addFault({
      match: (r) => r.method === "GET" && r.path.endsWith("/info/refs?service=git-receive-pack"),
      action: { kind: "hold", until: released },
      times: 1,
    });
    const asked = await call("POST", "/v1/promotions", {
      app: "gone",
      digest: signed.digest,
      to: "production",
    });
    await expect.poll(() => proxy.count((r) => r.faulted), { timeout: 30_000 }).toBe(1);
    const foreign = await foreignCommit("prod/gone.yaml", () => "image: [unclosed\n", "break it");
    release();
    let done: Json = {};
    for (let i = 0; i < 60 && !["promoted", "failed"].includes(done.state); i++)
      done = (await call("GET", `/v1/promotions/${asked.json.id}?wait=2s`)).json;
    expect(done.state).toBe("failed");
    expect(done.result.reason).toBe("gitops_parse_failed");
    expect(done.steps.find((s: Json) => s.name === "gitops")).toMatchObject({
      status: "failed",
      attempts: 1,
    });
    expect((await gitServer.log("deploy", "main"))[0]!.sha).toBe(foreign);
  });
});
