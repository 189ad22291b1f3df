import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import {
  callApi,
  mintedToken,
  stagingFerryJwtCredential,
  startTestFerry,
  type TestFerry,
} from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

// Who may read promotions (docs/promotion.md, "Who may read"), over HTTP with real tokens: every
// read answers only what the caller may read, and a promotion it may not read is a 404 like a
// missing one.

const PUBLIC_URL = "https://ferry.test";

let registry: TestRegistry;
let github: OidcIssuer;
let sso: OidcIssuer;
let ferry: TestFerry;
/** Promotion ids by what they promote. */
const ids = { webStaging: "", webProduction: "", apiStaging: "" };

const webPipeline = () => github.sign(githubClaims({ iss: github.url, aud: PUBLIC_URL }));
const apiPipeline = () =>
  github.sign(
    githubClaims({ iss: github.url, aud: PUBLIC_URL }, { repository_id: "99", repository: "acme/api" }),
  );
const outsider = () =>
  github.sign(
    githubClaims(
      { iss: github.url, aud: PUBLIC_URL },
      { repository_id: "500", repository: "mallory/tools", sub: "repo:mallory/tools:ref:refs/heads/main" },
    ),
  );
const person = (sub: string, groups: string[]) =>
  sso.sign(humanClaims({ iss: sso.url, aud: "ferry" }, { sub, groups }));

/** A ferry-jwt for `credential`, minted by a real exchange of web's pipeline token. */
async function minted(credential: string): Promise<string> {
  return mintedToken(ferry, await webPipeline(), credential);
}

const call = (token: string, method: string, url: string, body?: unknown) =>
  callApi(ferry, token, method, url, body);

/** The ids `GET /v1/promotions` (with `query`) lists to `token`, sorted. */
async function listed(token: string, query = ""): Promise<string[]> {
  const { status, json } = await call(token, "GET", `/v1/promotions${query}`);
  expect(status, JSON.stringify(json)).toBe(200);
  return (json.items as { id: string }[]).map((p) => p.id).sort();
}

/** `GET /v1/apps` as app → environment names. */
async function apps(token: string): Promise<Record<string, string[]>> {
  const { status, json } = await call(token, "GET", "/v1/apps");
  expect(status, JSON.stringify(json)).toBe(200);
  const list = json.apps as { name: string; environments: { name: string }[] }[];
  return Object.fromEntries(list.map((a) => [a.name, a.environments.map((e) => e.name).sort()]));
}

function expectNotFound(answer: { status: number; json: Record<string, unknown> }): void {
  expect(answer.status, JSON.stringify(answer.json)).toBe(404);
  expect(answer.json).toMatchObject({ code: "not_found" });
}

beforeAll(async () => {
  [registry, github, sso] = await Promise.all([
    startRegistry({ auth: "none" }),
    startOidcIssuer(),
    startOidcIssuer(),
  ]);
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-promotion-reads-"));
  const layout = await buildImageLayout(path.join(dir, "layout"), {});
  const digest = await pushImage(layout.dir, registry, "staging/web:v1");
  await pushImage(layout.dir, registry, "staging/api:v1");
  const require = { signature: { authorities: ["ferry"] } };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    issuers: [
      loopbackIssuerConfig("github", github, PUBLIC_URL, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, "ferry", { kind: "human", groupsClaim: "groups" }),
    ],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ferry", key: "ferry" }] },
    environments: [
      { name: "staging", require },
      {
        name: "production",
        after: "staging",
        require,
        promoters: {
          pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
          groups: ["on-call"],
        },
      },
      { name: "gated", require, approvals: { count: 1, groups: ["release"] } },
    ],
    apps: [
      {
        name: "web",
        images: {
          staging: `${registry.host}/staging/web`,
          production: `${registry.host}/prod/web`,
          gated: `${registry.host}/gated/web`,
        },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
      {
        name: "api",
        images: { staging: `${registry.host}/staging/api` },
        pipelines: [{ issuer: "github", claims: { repository_id: "99" } }],
      },
    ],
    credentials: [stagingFerryJwtCredential("github", PUBLIC_URL)],
    verification: { readers: ["release-managers"] },
  });
  const promote = async (token: string, body: Record<string, unknown>) => {
    const { status, json } = await call(token, "POST", "/v1/promotions", body);
    expect(status, JSON.stringify(json)).toBe(201);
    return String(json.id);
  };
  ids.webStaging = await promote(await webPipeline(), { app: "web", digest, to: "staging" });
  ids.webProduction = await promote(await webPipeline(), { app: "web", digest, to: "production" });
  ids.apiStaging = await promote(await apiPipeline(), { app: "api", digest, to: "staging" });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop(), sso?.stop()]);
});

describe("who may read promotions", () => {
  it("shows another repository's pipeline nothing, and answers 404 for an id it knows", async () => {
    const token = await outsider();
    expect(await listed(token)).toEqual([]);
    expect(await listed(token, "?app=web")).toEqual([]);
    expect(await apps(token)).toEqual({});
    const unknown = await call(token, "GET", "/v1/promotions/0000000000000000000000000");
    const known = await call(token, "GET", `/v1/promotions/${ids.webStaging}`);
    expectNotFound(known);
    // The same answer as for an id that does not exist: ids are no existence oracle.
    expect(known.json.detail).toBe(
      String(unknown.json.detail).replace("0000000000000000000000000", ids.webStaging),
    );
    expectNotFound(await call(token, "GET", `/v1/promotions/${ids.webStaging}?wait=1s`));
    expectNotFound(await call(token, "GET", "/v1/apps/web/environments/staging"));
    expectNotFound(await call(await outsider(), "POST", `/v1/promotions/${ids.webStaging}/cancel`));
  });

  it("shows a person without groups nothing", async () => {
    const token = await person("ada", []);
    expect(await listed(token)).toEqual([]);
    expect(await apps(token)).toEqual({});
    expectNotFound(await call(token, "GET", `/v1/promotions/${ids.apiStaging}`));
    expectNotFound(await call(token, "GET", "/v1/apps/api/environments/staging"));
  });

  it("shows a reader everything", async () => {
    const token = await person("grace", ["release-managers"]);
    expect(await listed(token)).toEqual(Object.values(ids).sort());
    expect(await apps(token)).toEqual({ web: ["gated", "production", "staging"], api: ["staging"] });
    expect((await call(token, "GET", `/v1/promotions/${ids.apiStaging}`)).status).toBe(200);
    expect((await call(token, "GET", "/v1/apps/web/environments/production")).status).toBe(200);
    // Reading is not promoting: a reader may not cancel.
    const cancel = await call(
      await person("grace", ["release-managers"]),
      "POST",
      `/v1/promotions/${ids.webProduction}/cancel`,
    );
    expect(cancel.status, JSON.stringify(cancel.json)).toBe(403);
  });

  it("shows an approver and an on-call person all of their app, and nothing of others", async () => {
    for (const groups of [["release"], ["on-call"]]) {
      const token = await person("lin", groups);
      expect(await listed(token)).toEqual([ids.webProduction, ids.webStaging].sort());
      expect(await apps(token)).toEqual({ web: ["gated", "production", "staging"] });
      expectNotFound(await call(token, "GET", `/v1/promotions/${ids.apiStaging}`));
    }
  });

  it("shows an app's pipeline its own app, not another app's", async () => {
    const token = await webPipeline();
    expect(await listed(token)).toEqual([ids.webProduction, ids.webStaging].sort());
    expect(await listed(token, "?app=api")).toEqual([]);
    expect(await apps(token)).toEqual({ web: ["gated", "production", "staging"] });
    expect((await call(token, "GET", `/v1/promotions/${ids.webProduction}`)).status).toBe(200);
    expectNotFound(await call(token, "GET", `/v1/promotions/${ids.apiStaging}`));
    expectNotFound(await call(token, "GET", "/v1/apps/api/environments/staging"));
  });

  it("shows a minted staging credential the staging promotions only", async () => {
    const token = await minted("ferry-staging");
    expect(await listed(token)).toEqual([ids.apiStaging, ids.webStaging].sort());
    expect(await listed(token, "?environment=production")).toEqual([]);
    expect(await apps(token)).toEqual({ web: ["staging"], api: ["staging"] });
    expect((await call(token, "GET", `/v1/promotions/${ids.webStaging}`)).status).toBe(200);
    expectNotFound(await call(token, "GET", `/v1/promotions/${ids.webProduction}`));
    expect((await call(token, "GET", "/v1/apps/web/environments/staging")).status).toBe(200);
    expectNotFound(await call(token, "GET", "/v1/apps/web/environments/production"));
  });
});
