import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { mintedToken, stagingFerryJwtCredential, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

// Who may verify what (docs/identity.md): every request goes through a fault proxy in front of the
// registry, so a test can assert that a refusal happened before Ferry asked the registry anything.

const PUBLIC_URL = "https://ferry.test";

let registry: TestRegistry;
let proxy: FaultProxy;
let github: OidcIssuer;
let sso: OidcIssuer;
let ferry: TestFerry;
let webImage: string;
let prodImage: string;

/** A pipeline token of acme/web (repository_id 74) with its own `sub`, so rate limits do not mix. */
const pipelineToken = (sub: string, over: Record<string, unknown> = {}) =>
  github.sign(githubClaims({ iss: github.url, aud: PUBLIC_URL }, { sub, ...over }));

const personToken = (sub: string, groups: string[]) =>
  sso.sign(humanClaims({ iss: sso.url, aud: "ferry" }, { sub, groups }));

async function verify(token: string | undefined, image: string, environment = "staging") {
  const res = await fetch(`${ferry.url}/v1/verifications`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify({ image, environment }),
  });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

/** A ferry-jwt minted by a real exchange for `credential` (whose audience is Ferry itself). */
async function minted(credential: string, sub: string): Promise<string> {
  return mintedToken(ferry, await pipelineToken(sub), credential);
}

function expectForbidden(
  { res, body }: { res: Response; body: Record<string, unknown> },
  reason: string,
): void {
  expect(res.status, JSON.stringify(body)).toBe(403);
  expect(body).toMatchObject({ code: "forbidden", reason });
}

beforeAll(async () => {
  [registry, github, sso] = await Promise.all([
    startRegistry({ auth: "none" }),
    startOidcIssuer(),
    startOidcIssuer(),
  ]);
  proxy = await startFaultProxy(registry.url);
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-verify-authz-"));
  const layout = await buildImageLayout(path.join(dir, "layout"), {});
  const digest = await pushImage(layout.dir, registry, "staging/web:v1");
  await pushImage(layout.dir, registry, "private/secret:v1");
  webImage = `${proxy.host}/staging/web@${digest}`;
  prodImage = `${proxy.host}/prod/web@${digest}`;
  const authority = { authorities: ["ferry"] };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    issuers: [
      loopbackIssuerConfig("github", github, PUBLIC_URL, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, "ferry", { kind: "human", groupsClaim: "groups" }),
    ],
    registries: [{ url: proxy.url }],
    trust: { authorities: [{ name: "ferry", key: "ferry" }] },
    environments: [
      { name: "staging", require: { signature: authority } },
      { name: "production", after: "staging", require: { signature: authority } },
    ],
    apps: [
      {
        name: "web",
        images: { staging: `${proxy.host}/staging/web`, production: `${proxy.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
      {
        name: "api",
        images: { staging: `${proxy.host}/staging/api` },
        pipelines: [{ issuer: "github", claims: { repository_id: "99" } }],
      },
    ],
    credentials: [stagingFerryJwtCredential("github", PUBLIC_URL)],
    verification: { readers: ["release-managers"], rateLimit: { requests: 3, per: "1m" } },
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([proxy?.stop(), registry?.stop(), github?.stop(), sso?.stop()]);
});

beforeEach(() => {
  proxy.clearRequests();
});

describe("POST /v1/verifications: who may verify what", () => {
  it("a pipeline of the app owning the repository gets the report", async () => {
    const { res, body } = await verify(await pipelineToken("web-main"), webImage);
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ environment: "staging" });
    expect(proxy.count()).toBeGreaterThan(0);
  });

  it("another app's pipeline: 403 before any registry request", async () => {
    const other = await pipelineToken("api-main", { repository_id: "99", repository: "acme/api" });
    expectForbidden(await verify(other, webImage), "not_app_pipeline");
    expect(proxy.count()).toBe(0);
  });

  it("a repository no app lists: the same 403 whether or not it exists, before any registry request", async () => {
    const token = await pipelineToken("web-unknown");
    const exists = await verify(token, `${proxy.host}/private/secret@${webImage.split("@")[1]}`);
    const missing = await verify(token, `${proxy.host}/private/missing@sha256:${"0".repeat(64)}`);
    expectForbidden(exists, "repository_not_configured");
    expectForbidden(missing, "repository_not_configured");
    expect(missing.body.detail).toBe(exists.body.detail);
    expect(proxy.count()).toBe(0);
  });

  it("a person needs a group of verification.readers", async () => {
    expectForbidden(await verify(await personToken("ada", ["engineering"]), webImage), "not_a_reader");
    expect(proxy.count()).toBe(0);
    const { res, body } = await verify(await personToken("grace", ["release-managers"]), webImage);
    expect(res.status, JSON.stringify(body)).toBe(200);
  });

  it("a Ferry-minted credential verifies only for the environment it was minted for", async () => {
    const staging = await minted("ferry-staging", "web-minted");
    proxy.clearRequests();
    expectForbidden(await verify(staging, prodImage, "production"), "environment_mismatch");
    expect(proxy.count()).toBe(0);
    const { res, body } = await verify(staging, webImage, "staging");
    expect(res.status, JSON.stringify(body)).toBe(200);
  });

  it("is rate-limited per identity: 429 rate_limited with Retry-After, before any registry request", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await verify(await pipelineToken("web-busy"), webImage)).res.status);
    proxy.clearRequests();
    const { res, body } = await verify(await pipelineToken("web-busy"), webImage);
    expect(statuses).toEqual([200, 200, 200]);
    expect(res.status).toBe(429);
    expect(body).toMatchObject({ code: "rate_limited" });
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(proxy.count()).toBe(0);
    // Another identity has its own budget.
    expect((await verify(await pipelineToken("web-quiet"), webImage)).res.status).toBe(200);
  });
});

describe("which calls consume a token", () => {
  it("verification only authenticates: the same token verifies twice", async () => {
    const token = await pipelineToken("web-twice");
    const first = await verify(token, webImage);
    const second = await verify(token, webImage);
    expect([first.res.status, second.res.status], JSON.stringify(second.body)).toEqual([200, 200]);
  });

  it("signing consumes the token: a second signing request with it is token_replayed", async () => {
    const token = await pipelineToken("web-signer");
    const sign = () =>
      fetch(`${ferry.url}/v1/signatures`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ image: webImage }),
      });
    const first = await sign();
    expect(first.status, await first.text()).toBe(201);
    const second = await sign();
    expect(second.status).toBe(401);
    expect(await second.json()).toMatchObject({ code: "unauthenticated", reason: "token_replayed" });
  });
});

describe("authentication comes before the body", () => {
  it("an unauthenticated caller with a broken body gets 401, not invalid_json", async () => {
    const res = await fetch(`${ferry.url}/v1/verifications`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"image": ',
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "unauthenticated", reason: "token_missing" });
  });
});
