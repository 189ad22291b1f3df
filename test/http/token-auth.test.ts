import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/common/logger.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { FerryJwtMinter } from "../../src/credentials/ferry-jwt.ts";
import { createIdentityServices, type IdentityServices } from "../../src/credentials/services.ts";
import { createApp } from "../../src/http/app.ts";
import {
  createApiAuthGuard,
  createAuthMiddleware,
  createTokenUse,
  principalOf,
  requireHuman,
  requirePipeline,
} from "../../src/http/auth.ts";
import { createHttpMetrics } from "../../src/http/metrics.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { startTestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

const PUBLIC_URL = "https://ferry.test";
const AUD = "https://ferry.example.com";

let github: OidcIssuer;
let sso: OidcIssuer;
let store: Store;
let identity: IdentityServices;
let server: Server;
let base: string;

beforeAll(async () => {
  [github, sso] = await Promise.all([startOidcIssuer(), startOidcIssuer()]);
  const { config } = parseConfigText(
    JSON.stringify({
      store: { sqlite: ":memory:" },
      keys: { signing: "k.pem" },
      issuers: [
        loopbackIssuerConfig("github", github, AUD, { platform: "github" }),
        loopbackIssuerConfig("sso", sso, "ferry", { kind: "human", groupsClaim: "groups" }),
      ],
    }),
    "/tmp/ferry.yaml",
    {},
  );
  store = await openStore({ sqlite: ":memory:" });
  const logger = createLogger("silent");
  identity = await createIdentityServices({
    config,
    publicUrl: PUBLIC_URL,
    store,
    signingKey: parseSigningKey(generateSigningKeyPem(), "test"),
    logger,
  });
  const { consume, reuse } = createTokenUse(identity.replay);
  const whoami = express.Router();
  whoami.get("/v1/whoami", reuse, (_req, res) => {
    res.json(principalOf(res));
  });
  whoami.post("/v1/whoami", consume, (_req, res) => {
    res.json(principalOf(res));
  });
  whoami.post("/v1/lookups", reuse, (_req, res) => {
    res.json(principalOf(res));
  });
  whoami.post("/v1/undeclared", (_req, res) => {
    res.json(principalOf(res));
  });
  whoami.post("/v1/approvals", consume, (_req, res) => {
    res.json({ approver: requireHuman(res).subject });
  });
  whoami.post("/v1/signatures", consume, (_req, res) => {
    res.json({ pipeline: requirePipeline(res).subject });
  });
  const app = createApp({
    logger,
    metrics: createHttpMetrics(),
    openapi: "",
    bodyLimit: 1024,
    trustProxy: false,
    readiness: async () => {},
    isShuttingDown: () => false,
    apiGuard: createApiAuthGuard(createAuthMiddleware({ verifier: identity.apiVerifier })),
    routers: [whoami],
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await store?.close();
  await Promise.all([github?.stop(), sso?.stop()]);
});

const call = (path: string, token?: string, method = "GET") =>
  fetch(`${base}${path}`, {
    method,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });

async function problem(res: Response, status: number, reason: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ reason, requestId: res.headers.get("x-request-id") });
  return body;
}

describe("authentication on /v1/*", () => {
  it("no token: 401 unauthenticated with a Bearer challenge", async () => {
    const res = await call("/v1/whoami");
    const body = await problem(res, 401, "token_missing");
    expect(body.code).toBe("unauthenticated");
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="ferry"');
  });

  it("a bad token: 401 with the reason, and error=invalid_token in the challenge", async () => {
    const expired = await github.sign(
      githubClaims({ iss: github.url, aud: AUD }, { exp: Math.floor(Date.now() / 1000) - 120 }),
    );
    const res = await call("/v1/whoami", expired);
    expect((await problem(res, 401, "token_expired")).code).toBe("unauthenticated");
    expect(res.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    await problem(
      await fetch(`${base}/v1/whoami`, { headers: { authorization: "Basic dTpw" } }),
      401,
      "token_malformed",
    );
  });

  it("a pipeline token yields a typed pipeline principal; it may be reused for reads", async () => {
    const token = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
    for (let i = 0; i < 2; i++) {
      const res = await call("/v1/whoami", token);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        kind: "pipeline",
        via: "oidc",
        issuer: { name: "github", platform: "github" },
        subject: "repo:acme/web:ref:refs/heads/main",
        claims: { repository_id: "74" },
      });
    }
  });

  it("a route that consumes the token makes it single use", async () => {
    const token = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
    expect((await call("/v1/whoami", token, "POST")).status).toBe(200);
    const replayed = await call("/v1/whoami", token, "POST");
    await problem(replayed, 401, "token_replayed");
    expect(replayed.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    // A token spent on a change no longer authenticates anything that consumes.
    await problem(await call("/v1/approvals", token, "POST"), 401, "token_replayed");
  });

  it("a POST route that only reads does not consume: the token is presented again", async () => {
    const token = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
    for (let i = 0; i < 3; i++) expect((await call("/v1/lookups", token, "POST")).status).toBe(200);
    // And can still be spent once by a route that changes state.
    expect((await call("/v1/whoami", token, "POST")).status).toBe(200);
  });

  it("a route that has not chosen whether it consumes the token fails closed", async () => {
    const token = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
    const res = await call("/v1/undeclared", token, "POST");
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ code: "internal" });
  });

  it("a human token yields a human principal with groups; kinds are enforced", async () => {
    const make = () => sso.sign(humanClaims({ iss: sso.url, aud: "ferry" }));
    const res = await call("/v1/whoami", await make());
    expect(await res.json()).toMatchObject({ kind: "human", groups: ["release-managers", "engineering"] });
    expect((await call("/v1/approvals", await make(), "POST")).status).toBe(200);
    const refused = await call("/v1/signatures", await make(), "POST");
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { code: string }).code).toBe("forbidden");
  });

  it("accepts a Ferry-minted token whose audience is Ferry itself, not one minted for elsewhere", async () => {
    const minter = new FerryJwtMinter({ keys: identity.keys, issuer: PUBLIC_URL });
    const token = await identity.exchangeVerifier.verify(
      await github.sign(githubClaims({ iss: github.url, aud: AUD })),
    );
    const mint = (audience: string) =>
      minter.mint({
        credential: {
          name: "ferry-api",
          environment: "staging",
          type: "ferry-jwt",
          ttl: 300_000,
          audience,
          allow: [],
        },
        token,
        subjectToken: "",
        requestId: "r",
      });
    const own = await call("/v1/whoami", (await mint(PUBLIC_URL)).accessToken);
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({
      kind: "pipeline",
      via: "ferry",
      issuer: { name: "ferry", url: PUBLIC_URL },
      actor: { issuer: github.url, subject: "repo:acme/web:ref:refs/heads/main" },
      environment: "staging",
      credential: "ferry-api",
    });
    await problem(
      await call("/v1/whoami", (await mint("https://deployer.example.com")).accessToken),
      401,
      "audience_mismatch",
    );
  });

  it("a Ferry-minted token is never accepted as the subject of an exchange", async () => {
    const minter = new FerryJwtMinter({ keys: identity.keys, issuer: PUBLIC_URL });
    const token = await identity.exchangeVerifier.verify(
      await github.sign(githubClaims({ iss: github.url, aud: AUD })),
    );
    const minted = await minter.mint({
      credential: {
        name: "x",
        environment: "staging",
        type: "ferry-jwt",
        ttl: 300_000,
        audience: PUBLIC_URL,
        allow: [],
      },
      token,
      subjectToken: "",
      requestId: "r",
    });
    await expect(identity.exchangeVerifier.verify(minted.accessToken)).rejects.toMatchObject({
      reason: "issuer_unknown",
    });
  });
});

describe("in a running Ferry", () => {
  it("/v1/* needs a token; /v1/token and the well-known documents do not", async () => {
    const ferry = await startTestFerry();
    try {
      const res = await fetch(`${ferry.url}/v1/verifications`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: "unauthenticated", reason: "token_missing" });
      expect((await fetch(`${ferry.url}/.well-known/jwks.json`)).status).toBe(200);
      const token = await fetch(`${ferry.url}/v1/token`, { method: "POST" });
      expect(token.status).toBe(400);
      expect(await token.json()).toMatchObject({ error: "invalid_request" });
    } finally {
      await ferry.close();
    }
  });
});
