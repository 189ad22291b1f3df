import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildkiteClaims } from "../identity/fixtures.ts";
import { exchangeToken, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

/**
 * Negative probes of single use: a second string that carries the same signed content must not pass
 * as a new token, neither at `POST /v1/token` nor at the `/v1/*` guard (which consumes a token on a
 * state-changing request). The issuers send no `jti` (`requireJti: false`), so single use rests on
 * what the token's signature covers.
 */

const AUD = "https://ferry.example.com";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The order of P-256, the ES256 curve. */
const P256_N = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

let es: OidcIssuer;
let rs: OidcIssuer;
let ferry: TestFerry;

beforeAll(async () => {
  [es, rs] = await Promise.all([startOidcIssuer({ algorithms: ["ES256"] }), startOidcIssuer()]);
  const issuer = (name: string, i: OidcIssuer, extra: Record<string, unknown> = {}) =>
    loopbackIssuerConfig(name, i, AUD, {
      platform: "buildkite",
      requireJti: false,
      rateLimit: { requests: 1000, per: "1m" },
      ...extra,
    });
  const rule = (name: string) => ({ issuer: name, claims: { organization_slug: "acme-inc" } });
  ferry = await startTestFerry({
    issuers: [issuer("es", es, { algorithms: ["ES256"] }), issuer("rs", rs)],
    environments: [{ name: "staging" }],
    credentials: [
      {
        name: "deploy-staging",
        environment: "staging",
        type: "ferry-jwt",
        ttl: "10m",
        allow: [rule("es"), rule("rs")],
      },
    ],
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([es?.stop(), rs?.stop()]);
});

async function exchange(token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await exchangeToken(ferry, token, "deploy-staging");
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** `POST /v1/signatures` with an empty body: past the guard it is a 400, so the guard let it through. */
async function guarded(token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${ferry.url}/v1/signatures`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A fresh job's claims: two tokens of one second differ only in what identifies the job. */
const claimsOf = (i: OidcIssuer) => buildkiteClaims({ iss: i.url, aud: AUD }, { job_id: randomUUID() });

/** The same token with the last signature character's unused low bits changed: same signature bytes. */
function flipSpareBits(token: string): string {
  const last = B64URL.indexOf(token.at(-1)!);
  const flipped = `${token.slice(0, -1)}${B64URL[last ^ 1]}`;
  const signature = (t: string) => Buffer.from(t.slice(t.lastIndexOf(".") + 1), "base64url");
  // The attack only works if the decoded signature is unchanged: check the premise.
  expect(signature(flipped).equals(signature(token))).toBe(true);
  expect(flipped).not.toBe(token);
  return flipped;
}

/** The same ES256 token with (r, s) replaced by (r, n − s): an equally valid signature. */
function negateS(token: string): string {
  const dot = token.lastIndexOf(".");
  const raw = Buffer.from(token.slice(dot + 1), "base64url");
  const s = BigInt(`0x${raw.subarray(32).toString("hex")}`);
  const other = Buffer.from((P256_N - s).toString(16).padStart(64, "0"), "hex");
  return `${token.slice(0, dot + 1)}${Buffer.concat([raw.subarray(0, 32), other]).toString("base64url")}`;
}

describe("a token re-encoded is still the same token", () => {
  it("ES256, spare bits of the signature flipped: refused as malformed at /v1/token", async () => {
    const token = await es.sign(claimsOf(es));
    expect((await exchange(token)).status).toBe(200);
    const again = await exchange(flipSpareBits(token));
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_grant", reason: "token_malformed" });
    expect(again.body).not.toHaveProperty("access_token");
  });

  it("ES256, spare bits flipped: refused as malformed at the /v1/* guard", async () => {
    const token = await es.sign(claimsOf(es));
    expect((await guarded(token)).status).toBe(400);
    const again = await guarded(flipSpareBits(token));
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ code: "unauthenticated", reason: "token_malformed" });
  });

  it("RS256, spare bits flipped: refused as malformed at /v1/token and at the guard", async () => {
    const token = await rs.sign(claimsOf(rs));
    expect((await exchange(token)).status).toBe(200);
    expect((await exchange(flipSpareBits(token))).body).toMatchObject({ reason: "token_malformed" });
    const other = await rs.sign(claimsOf(rs));
    expect((await guarded(other)).status).toBe(400);
    const again = await guarded(flipSpareBits(other));
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ reason: "token_malformed" });
  });

  it("ES256 with (r, n − s): a replay at /v1/token", async () => {
    const token = await es.sign(claimsOf(es));
    expect((await exchange(token)).status).toBe(200);
    const again = await exchange(negateS(token));
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_grant", reason: "token_replayed" });
    expect(again.body).not.toHaveProperty("access_token");
  });

  it("ES256 with (r, n − s): a replay at the /v1/* guard", async () => {
    const token = await es.sign(claimsOf(es));
    expect((await guarded(token)).status).toBe(400);
    const again = await guarded(negateS(token));
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ code: "unauthenticated", reason: "token_replayed" });
  });

  it("a token used at the guard cannot then be exchanged in its other form, and vice versa", async () => {
    const first = await es.sign(claimsOf(es));
    expect((await guarded(first)).status).toBe(400);
    expect((await exchange(negateS(first))).body).toMatchObject({ reason: "token_replayed" });
    const second = await es.sign(claimsOf(es));
    expect((await exchange(negateS(second))).status).toBe(200);
    expect((await guarded(second)).body).toMatchObject({ reason: "token_replayed" });
  });

  it("the same jti signed again (a different signature) is a replay", async () => {
    const claims = { ...claimsOf(es), jti: "buildkite-job-0184990a" };
    const [first, second] = [await es.sign(claims), await es.sign(claims)];
    expect(second).not.toBe(first);
    expect((await exchange(first)).status).toBe(200);
    expect((await exchange(second)).body).toMatchObject({ reason: "token_replayed" });
  });
});
