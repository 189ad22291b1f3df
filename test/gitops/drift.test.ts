import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { runFerryInProcess } from "../support/cli.ts";
import { callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import type { Json } from "../support/ferry-serve.ts";
import { git, startGitServer, type TestGitServer } from "../support/git-server.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";
const TOKEN = "drift-t0ken";
const ABSENT = `sha256:${"e".repeat(64)}`;

let source: TestRegistry;
let github: OidcIssuer;
let gitServer: TestGitServer;
let images: SignedImage[];
let ferry: TestFerry;
let work: string;

const token = (over: Record<string, unknown> = {}) =>
  github.sign(githubClaims({ iss: github.url, aud: AUD }, over));
async function call(method: string, route: string, body?: unknown, as?: string) {
  const { status, json } = await callApi(ferry, as ?? (await token()), method, route, body);
  return { status, json: json as Json };
}
const drift = () => call("GET", "/v1/apps/web/environments/production/drift");
async function gauge(): Promise<string | undefined> {
  const text = await (await fetch(`${ferry.url}/metrics`)).text();
  return /^ferry_gitops_in_sync\{app="web",environment="production"\} (\d)$/m.exec(text)?.[1];
}

/** Rewrites the file on main as another writer would. */
async function pin(digest: string): Promise<void> {
  const dir = mkdtempSync(path.join(work, "pin-"));
  const repo = path.join(dir, "repo");
  await git(["clone", "--quiet", gitServer.url("deploy"), "repo"], { cwd: dir, home: dir });
  const file = path.join(repo, "web.yaml");
  writeFileSync(file, readFileSync(file, "utf8").replace(/sha256:[0-9a-f]{64}/, digest));
  await git(["commit", "--quiet", "-am", "hand edit"], { cwd: repo, home: dir });
  const pushed = await git(["push", "--quiet", "origin", "main"], { cwd: repo, home: dir });
  if (pushed.code !== 0) throw new Error(pushed.stderr);
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "ferry-gitops-drift-"));
  [source, github, gitServer] = await Promise.all([
    startRegistry(),
    startOidcIssuer(),
    startGitServer({ username: "ferry", password: TOKEN }),
  ]);
  const first = await pushSignedImage(source, "prod/web", work, { bundle: false });
  images = [first, await pushSignedImage(source, "prod/web", work, { bundle: false, keys: first.keys })];
  await gitServer.createRepo("deploy", { "web.yaml": "spec:\n  image: old.example/web:v1\n" });
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: source.url }],
    trust: { authorities: [{ name: "ci", key: first.keys.publicKeyPath }] },
    environments: [
      { name: "staging", require: { signature: { authorities: ["ci"] } }, evidence: { summary: false } },
      { name: "production", require: { signature: { authorities: ["ci"] } }, evidence: { summary: false } },
    ],
    promotion: { pollInterval: "200ms" },
    apps: [
      {
        name: "web",
        images: { staging: `${source.host}/prod/web`, production: `${source.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
        gitops: {
          production: {
            repo: `${gitServer.baseUrl}/deploy.git`,
            auth: { token: TOKEN, username: "ferry" },
            path: "web.yaml",
            kind: "yaml",
            field: "spec.image",
          },
        },
      },
    ],
  });
}, 120_000);

afterAll(async () => {
  await ferry?.close();
  await Promise.all([source?.stop(), github?.stop(), gitServer?.stop()]);
});

describe("drift: Ferry's record, Git's pin and the registry", () => {
  it("before any promotion: not in sync, nothing recorded, Git pins no digest", async () => {
    const { status, json } = await drift();
    expect(status).toBe(200);
    expect(json).toMatchObject({
      app: "web",
      environment: "production",
      inSync: false,
      git: { branch: "main", path: "web.yaml", problem: expect.stringContaining("pins no digest") },
      registry: { repository: `${source.host}/prod/web`, present: false, verified: false },
    });
    expect(json.recorded).toBeUndefined();
    expect(await gauge()).toBe("0");
  });

  it("after a promotion: in sync (recorded = pinned, present and verified); a hand edit to another digest is drift", async () => {
    const asked = await call("POST", "/v1/promotions", {
      app: "web",
      digest: images[0]!.digest,
      to: "production",
    });
    let p: Json = asked.json;
    for (let i = 0; i < 60 && !["promoted", "failed"].includes(p.state); i++)
      p = (await call("GET", `/v1/promotions/${asked.json.id}?wait=2s`)).json;
    expect(p.state).toBe("promoted");
    const head = (await gitServer.log("deploy", "main"))[0]!.sha;
    const inSync = await drift();
    expect(inSync.json).toMatchObject({
      inSync: true,
      recorded: { digest: images[0]!.digest, promotion: asked.json.id },
      git: { digest: images[0]!.digest, repository: `${source.host}/prod/web`, commit: head },
      registry: { digest: images[0]!.digest, present: true, verified: true },
    });
    expect(await gauge()).toBe("1");

    await pin(images[1]!.digest);
    const drifted = await drift();
    expect(drifted.json).toMatchObject({
      inSync: false,
      recorded: { digest: images[0]!.digest },
      git: { digest: images[1]!.digest },
      registry: { digest: images[1]!.digest, present: true, verified: true },
    });
    expect(await gauge()).toBe("0");

    await pin(ABSENT);
    const absent = await drift();
    expect(absent.json).toMatchObject({
      inSync: false,
      git: { digest: ABSENT },
      registry: { digest: ABSENT, present: false, verified: false, reason: "not_in_repository" },
    });
  });

  it("ferry drift: exit 0 in sync, 1 on drift, with the three sources on their lines", async () => {
    const env = async () => ({ FERRY_TOKEN: await token() });
    const drifted = await runFerryInProcess(
      ["drift", "--server", ferry.url, "--app", "web", "--env", "production"],
      await env(),
    );
    expect(drifted.code).toBe(1);
    expect(drifted.out).toContain("web in production: DRIFT\n");
    expect(drifted.out).toContain(`  git:      ${ABSENT} at main@`);
    expect(drifted.out).toContain("missing");
    await pin(images[0]!.digest);
    const ok = await runFerryInProcess(
      ["drift", "--server", ferry.url, "--app", "web", "--env", "production", "--json"],
      await env(),
    );
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ inSync: true });
    const usage = await runFerryInProcess(["drift", "--server", ferry.url, "--app", "web"], await env());
    expect(usage.code).toBe(2);
  });

  it("read access is the environment's: unknown or unreadable answers 404, an environment without a target too", async () => {
    const stranger = await token({ repository_id: "999" });
    const hidden = await call("GET", "/v1/apps/web/environments/production/drift", undefined, stranger);
    expect(hidden.status).toBe(404);
    expect(hidden.json.reason).toBe("unknown_app");
    expect((await call("GET", "/v1/apps/nope/environments/production/drift")).status).toBe(404);
    const staging = await call("GET", "/v1/apps/web/environments/staging/drift");
    expect(staging.status).toBe(404);
    expect(staging.json.reason).toBe("gitops_not_configured");
    expect(ferry.logText()).not.toContain(TOKEN);
  });
});
