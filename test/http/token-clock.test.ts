import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { JWKS_DEFAULTS } from "../../src/identity/jwks.ts";
import { githubClaims } from "../identity/fixtures.ts";
import { exchangeToken, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

// One FakeClock passed to startFerry drives the whole identity side of a running Ferry: token time
// checks, the JWKS cache, the per-identity rate limit, minted tokens' times and the audit record.
// The clock starts years away from the wall clock, so anything still reading the wall clock refuses
// these tokens (or accepts the wall clock's) and the tests below fail.

const AUD = "https://ferry.example.com";
const PUBLIC_URL = "https://ferry.test";
const T0 = Date.UTC(2031, 0, 1);

let github: OidcIssuer;
let ferry: TestFerry;
let clock: FakeClock;
let requestCounter = 0;

const seconds = () => Math.floor(clock.now() / 1000);
const tokenFor = (sub: string, at = seconds()) =>
  github.sign(githubClaims({ iss: github.url, aud: AUD, now: at }, { sub }));

beforeAll(async () => {
  github = await startOidcIssuer();
  clock = new FakeClock(T0);
  ferry = await startTestFerry(
    {
      server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
      issuers: [
        loopbackIssuerConfig("github", github, AUD, {
          platform: "github",
          jwksUri: github.jwksUri,
          rateLimit: { requests: 1, per: "1m" },
        }),
      ],
      environments: [{ name: "staging" }],
      credentials: [
        {
          name: "deploy-staging",
          environment: "staging",
          type: "ferry-jwt",
          ttl: "10m",
          allow: [{ issuer: "github", claims: { repository_id: "74" } }],
        },
      ],
    },
    { clock },
  );
});

afterAll(async () => {
  await ferry?.close();
  await github?.stop();
});

async function exchange(token: string) {
  const requestId = `test-clock-${++requestCounter}`;
  const res = await exchangeToken(ferry, token, "deploy-staging", { "x-request-id": requestId });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
    requestId,
  };
}

/** `POST /v1/signatures` with an empty body: past the auth guard it is a 400, refused by it a 401. */
async function guarded(token: string) {
  const res = await fetch(`${ferry.url}/v1/signatures`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("one clock drives a test Ferry's identity", () => {
  it("checks tokens, mints Ferry's token and stamps the audit record at the injected clock's time", async () => {
    const res = await exchange(await tokenFor("repo:acme/web:ref:refs/heads/main:mint"));
    expect(res.status).toBe(200);
    const minted = decodeJwt(res.body.access_token as string);
    expect(minted).toMatchObject({ iat: T0 / 1000, nbf: T0 / 1000, exp: T0 / 1000 + 600 });
    const record = await ferry.store.db
      .selectFrom("token_exchanges")
      .select("at")
      .where("request_id", "=", res.requestId)
      .executeTakeFirstOrThrow();
    expect(Number(record.at)).toBe(T0);
    // The API's bearer check uses the same clock.
    expect((await guarded(await tokenFor("repo:acme/web:ref:refs/heads/main:api"))).status).toBe(400);
    // A token that is fresh by the wall clock is years old by Ferry's.
    const wall = await exchange(
      await tokenFor("repo:acme/web:ref:refs/heads/main:wall", Math.floor(Date.now() / 1000)),
    );
    expect(wall.status).toBe(400);
    expect(wall.body).toMatchObject({ error: "invalid_grant", reason: "token_expired" });
  });

  it("refills the per-identity rate limit as the injected clock moves", async () => {
    const sub = "repo:acme/web:ref:refs/heads/main:rate";
    expect((await exchange(await tokenFor(sub))).status).toBe(200);
    const limited = await exchange(await tokenFor(sub));
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    await clock.advance(59_999);
    expect((await exchange(await tokenFor(sub))).status).toBe(429);
    await clock.advance(1);
    expect((await exchange(await tokenFor(sub))).status).toBe(200);
  });

  it("keeps the issuer's JWKS for its TTL by the injected clock, then fetches it again", async () => {
    const verifies = async () =>
      expect((await guarded(await tokenFor(`repo:acme/web:ref:refs/heads/main:${seconds()}`))).status).toBe(
        400,
      );
    const before = github.jwksRequests().length;
    // Whatever the cached set's age, it is stale a whole TTL later: this fetch starts a fresh TTL.
    await clock.advance(JWKS_DEFAULTS.ttlMs);
    await verifies();
    expect(github.jwksRequests()).toHaveLength(before + 1);
    await clock.advance(JWKS_DEFAULTS.ttlMs - 1);
    await verifies();
    expect(github.jwksRequests()).toHaveLength(before + 1);
    await clock.advance(1);
    await verifies();
    expect(github.jwksRequests()).toHaveLength(before + 2);
  });
});
