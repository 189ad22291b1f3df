import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import {
  AUD,
  client,
  isFinished,
  type ServeProcess,
  serve,
  writeServeConfig,
} from "../support/ferry-serve.ts";
import { startGitServer, type TestGitServer } from "../support/git-server.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const TOKEN = "crash-t0ken-secret";
const KUSTOMIZATION =
  "kind: Kustomization\nimages:\n  - name: web\n    newName: old.example/web\n    newTag: v1\n";

let source: TestRegistry;
let github: OidcIssuer;
let gitServer: TestGitServer;
let proxy: FaultProxy;
let signed: SignedImage;
let work: string;
const running: ServeProcess[] = [];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "ferry-gitops-crash-"));
  [source, github, gitServer] = await Promise.all([
    startRegistry(),
    startOidcIssuer(),
    startGitServer({ username: "ferry", password: TOKEN }),
  ]);
  proxy = await startFaultProxy(gitServer.baseUrl);
  signed = await pushSignedImage(source, "prod/web", work, { bundle: false });
}, 120_000);

afterAll(async () => {
  for (const p of running) p.child.kill("SIGKILL");
  await Promise.all([source?.stop(), github?.stop(), gitServer?.stop(), proxy?.stop()]);
});

/** `ferry serve` on SQLite whose git remote is reached through the fault proxy. */
async function setUp(repo: string) {
  await gitServer.createRepo(repo, { "prod/kustomization.yaml": KUSTOMIZATION });
  const dir = mkdtempSync(path.join(work, `${repo}-`));
  return writeServeConfig(dir, {
    store: { sqlite: "./ferry.db" },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: source.url }],
    trust: { authorities: [{ name: "ci", key: signed.keys.publicKeyPath }] },
    environments: [
      { name: "production", require: { signature: { authorities: ["ci"] } }, evidence: { summary: false } },
    ],
    apps: [
      {
        name: "web",
        images: { production: `${source.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
        gitops: {
          production: {
            repo: `${proxy.url}/${repo}.git`,
            auth: { token: TOKEN, username: "ferry" },
            path: "prod/kustomization.yaml",
            kind: "kustomize",
            image: "web",
          },
        },
      },
    ],
    promotion: { pollInterval: "200ms", leaseTtl: "2s" },
  });
}

async function start(file: string, url: string): Promise<ServeProcess> {
  const p = await serve(file, url);
  running.push(p);
  return p;
}

const receivePack = (repo: string) => (r: { method: string; path: string }) =>
  r.method === "POST" && r.path === `/${repo}.git/git-receive-pack`;

/** Ferry's commits on main (those with a Ferry-Promotion trailer). */
async function ferryCommits(repo: string, id: string) {
  return (await gitServer.log(repo, "main")).filter((c) => c.body.includes(`Ferry-Promotion: ${id}`));
}

describe("the gitops step survives SIGKILL of ferry serve", () => {
  it("between commit and push (the push never reaches the server): after a restart, exactly one commit", async () => {
    const { file, url } = await setUp("commit-push");
    let ferry = await start(file, url);
    const api = client(github, () => ferry.url);
    // The push's upload is never forwarded: the commit exists only in Ferry's working copy.
    proxy.addFault({ match: receivePack("commit-push"), action: { kind: "stall" }, times: 1 });
    const asked = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: signed.digest,
      to: "production",
    });
    expect(asked.status).toBe(201);
    const id = asked.json.id as string;
    await expect
      .poll(() => proxy.count((r) => r.faulted && receivePack("commit-push")(r)), {
        timeout: 30_000,
        message: JSON.stringify(proxy.requests.map((r) => [r.method, r.path, r.status, r.faulted])),
      })
      .toBe(1);
    const during = await api.call("GET", `/v1/promotions/${id}`);
    expect(during.json.steps[1]).toMatchObject({ name: "gitops", status: "running", attempts: 1 });
    expect(await ferryCommits("commit-push", id)).toHaveLength(0);

    expect((await ferry.kill()).signal).toBe("SIGKILL");
    proxy.clearFaults();
    ferry = await start(file, url);
    const done = await api.until(id, isFinished);
    expect(done.state).toBe("promoted");
    expect(done.steps[1]).toMatchObject({ name: "gitops", status: "done", attempts: 2 });
    const commits = await ferryCommits("commit-push", id);
    expect(commits).toHaveLength(1);
    expect((await gitServer.log("commit-push", "main")).length).toBe(2);
    expect(done.steps[1].message).toBe(`pushed ${commits[0]!.sha} to main`);
    await ferry.kill();
  });

  it("between push and record (the push landed, its answer never arrives): after a restart, the commit is found, not made again", async () => {
    const { file, url } = await setUp("push-record");
    let ferry = await start(file, url);
    const api = client(github, () => ferry.url);
    // Forwarded (the server updates main), but git never hears the end of the answer.
    proxy.addFault({ match: receivePack("push-record"), action: { kind: "stall-body" }, times: 1 });
    const asked = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: signed.digest,
      to: "production",
    });
    const id = asked.json.id as string;
    await expect
      .poll(async () => (await ferryCommits("push-record", id)).length, { timeout: 30_000 })
      .toBe(1);
    const [pushed] = await ferryCommits("push-record", id);
    const during = await api.call("GET", `/v1/promotions/${id}`);
    expect(during.json.steps[1]).toMatchObject({ name: "gitops", status: "running", attempts: 1 });

    expect((await ferry.kill()).signal).toBe("SIGKILL");
    proxy.clearFaults();
    ferry = await start(file, url);
    const done = await api.until(id, isFinished);
    expect(done.state).toBe("promoted");
    expect(done.steps[1]).toMatchObject({
      name: "gitops",
      status: "done",
      attempts: 2,
      message: `${pushed!.sha} (pushed earlier) on main`,
    });
    expect(await ferryCommits("push-record", id)).toHaveLength(1);
    expect((await gitServer.log("push-record", "main")).length).toBe(2);
    await ferry.kill();
  });
});
