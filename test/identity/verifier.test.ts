import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { configSchema } from "../../src/config/schema.ts";
import { isIdentityError } from "../../src/identity/errors.ts";
import type { JsonFetcher } from "../../src/identity/http-fetch.ts";
import { httpJsonFetcher } from "../../src/identity/http-fetch.ts";
import { registeredIssuers } from "../../src/identity/issuers.ts";
import { decodeJwt, MAX_TOKEN_BYTES } from "../../src/identity/jwt.ts";
import { principalFromToken } from "../../src/identity/principal.ts";
import { createTokenVerifier } from "../../src/identity/verifier.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { identityReasonOf } from "../support/outcomes.ts";
import { githubClaims, humanClaims, kubernetesClaims } from "./fixtures.ts";

const AUD = "https://ferry.example.com";
const T0 = 1_750_000_000;

let github: OidcIssuer;
let sso: OidcIssuer;
let k8s: OidcIssuer;
let fetches: string[];

beforeAll(async () => {
  [github, sso, k8s] = await Promise.all([
    startOidcIssuer(),
    startOidcIssuer(),
    startOidcIssuer({ algorithms: ["ES256"] }),
  ]);
});
afterAll(async () => {
  await Promise.all([github?.stop(), sso?.stop(), k8s?.stop()]);
});

function verifierAt(
  seconds: number,
  issuerOverrides: Record<string, unknown> = {},
  k8sOverrides: Record<string, unknown> = {},
) {
  const config = configSchema.parse({
    store: { sqlite: ":memory:" },
    keys: { signing: "k.pem" },
    issuers: [
      loopbackIssuerConfig("github", github, AUD, {
        platform: "github",
        maxTokenAge: "10m",
        ...issuerOverrides,
      }),
      loopbackIssuerConfig("sso", sso, "ferry", { kind: "human", groupsClaim: "groups" }),
      loopbackIssuerConfig("k8s", k8s, AUD, {
        algorithms: ["ES256"],
        platform: "kubernetes",
        ...k8sOverrides,
      }),
    ],
  });
  fetches = [];
  const fetcher: JsonFetcher = {
    getJson: (url, options) => {
      fetches.push(url);
      return httpJsonFetcher.getJson(url, options);
    },
  };
  const clock = new FakeClock(seconds * 1000);
  return createTokenVerifier(registeredIssuers(config.issuers, { fetcher, clock }), { clock });
}

const reasonOf = (promise: Promise<unknown>) => identityReasonOf(promise, "verified");

const gh = (over: Record<string, unknown> = {}) => githubClaims({ iss: github.url, aud: AUD, now: T0 }, over);

describe("time claims with a 60 s leeway", () => {
  it.each([
    ["exp 59 s ago", { exp: T0 - 59 }, "verified"],
    ["exp 61 s ago", { exp: T0 - 61 }, "token_expired"],
    ["nbf 59 s ahead", { nbf: T0 + 59 }, "verified"],
    ["nbf 61 s ahead", { nbf: T0 + 61 }, "token_not_yet_valid"],
    ["iat 59 s ahead", { iat: T0 + 59, nbf: T0 }, "verified"],
    ["iat 61 s ahead", { iat: T0 + 61, nbf: T0 }, "token_issued_in_future"],
    ["iat 10m59s old", { iat: T0 - 659, nbf: T0 - 659 }, "verified"],
    ["iat 11m1s old", { iat: T0 - 661, nbf: T0 - 661 }, "token_too_old"],
    ["no iat", { iat: undefined }, "claims_invalid"],
    ["no exp", { exp: undefined }, "claims_invalid"],
  ])("%s → %s", async (_name, over, expected) => {
    const verifier = verifierAt(T0);
    expect(await reasonOf(verifier.verify(await github.sign(gh(over))))).toBe(expected);
  });

  it("a configured leeway of 1 ms is (almost) exact", async () => {
    const verifier = verifierAt(T0, { leeway: "1ms" });
    expect(await reasonOf(verifier.verify(await github.sign(gh({ exp: T0 - 1 }))))).toBe("token_expired");
  });
});

describe("verification order", () => {
  it("an unregistered issuer is refused before any outbound request", async () => {
    const verifier = verifierAt(T0);
    const stranger = await startOidcIssuer();
    try {
      const token = await stranger.sign(gh({ iss: stranger.url }));
      expect(await reasonOf(verifier.verify(token))).toBe("issuer_unknown");
      expect(fetches).toEqual([]);
      expect(stranger.requests).toEqual([]);
    } finally {
      await stranger.stop();
    }
  });

  it("an algorithm outside the allow-list is refused before the JWKS is fetched", async () => {
    const verifier = verifierAt(T0);
    const es = await k8s.sign(gh());
    const [, p, s] = es.split(".");
    const forged = `${Buffer.from(JSON.stringify({ alg: "ES256", kid: "x" })).toString("base64url")}.${p}.${s}`;
    expect(await reasonOf(verifier.verify(forged))).toBe("algorithm_not_allowed");
    expect(fetches).toEqual([]);
  });

  it("the size cap comes before any parsing", () => {
    const huge = `${"a".repeat(MAX_TOKEN_BYTES)}.b.c`;
    try {
      decodeJwt(huge);
      expect.unreachable();
    } catch (err) {
      expect(isIdentityError(err, "token_too_large")).toBe(true);
    }
  });

  it("refuses the crit header it does not implement", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "RS256", crit: ["x"], x: 1 })).toString("base64url");
    const payload = Buffer.from(JSON.stringify(gh())).toString("base64url");
    expect(await reasonOf(verifierAt(T0).verify(`${header}.${payload}.AAAA`))).toBe("header_not_allowed");
  });
});

describe("single use keys on what was signed", () => {
  /** The same ES256 token with (r, s) replaced by (r, n − s), which verifies just as well. */
  const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  function negateS(token: string): string {
    const dot = token.lastIndexOf(".");
    const raw = Buffer.from(token.slice(dot + 1), "base64url");
    const s = BigInt(`0x${raw.subarray(32).toString("hex")}`);
    raw.write((P256_N - s).toString(16).padStart(64, "0"), 32, "hex");
    return `${token.slice(0, dot + 1)}${raw.toString("base64url")}`;
  }
  const k8sClaims = (over: Record<string, unknown> = {}) =>
    kubernetesClaims({ iss: k8s.url, aud: AUD, now: T0 }, over);

  it("without a jti: the same signing input with another valid signature has the same key", async () => {
    const verifier = verifierAt(T0, {}, { requireJti: false });
    const token = await k8s.sign(k8sClaims({ jti: undefined }));
    const [first, second] = [await verifier.verify(token), await verifier.verify(negateS(token))];
    expect(second.replayKey).toBe(first.replayKey);
    expect(second.sha256).not.toBe(first.sha256);
    const other = await verifier.verify(await k8s.sign(k8sClaims({ jti: undefined, iat: T0 - 1 })));
    expect(other.replayKey).not.toBe(first.replayKey);
  });

  it("with a jti: the issuer and jti alone, whatever else was signed", async () => {
    const verifier = verifierAt(T0);
    const a = await verifier.verify(await k8s.sign(k8sClaims({ jti: "same" })));
    const b = await verifier.verify(await k8s.sign(k8sClaims({ jti: "same", iat: T0 - 1 })));
    expect(b.replayKey).toBe(a.replayKey);
  });
});

describe("principals", () => {
  it("a pipeline token yields a pipeline principal, with its parsed claims", async () => {
    const verified = await verifierAt(T0).verify(await github.sign(gh()));
    const principal = principalFromToken(verified);
    expect(principal).toMatchObject({
      kind: "pipeline",
      via: "oidc",
      issuer: { name: "github", url: github.url, platform: "github" },
      subject: "repo:acme/web:ref:refs/heads/main",
    });
    expect(principal.claims.repository_id).toBe("74");
    expect(verified.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(verified.claims)).toBe(true);
  });

  it("a human token yields groups from the issuer's groupsClaim", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await sso.sign(humanClaims({ iss: sso.url, aud: "ferry", now }));
    const principal = principalFromToken(await verifierAt(now).verify(token));
    expect(principal).toMatchObject({
      kind: "human",
      groups: ["release-managers", "engineering"],
      email: "ada@example.com",
      name: "Ada Lovelace",
    });
  });

  it("a Kubernetes token with a list audience and nested claims verifies", async () => {
    const token = await k8s.sign(
      kubernetesClaims({ iss: k8s.url, aud: ["https://kubernetes.default.svc", AUD], now: T0 }),
    );
    const verified = await verifierAt(T0).verify(token);
    expect(verified.audience).toEqual(["https://kubernetes.default.svc", AUD]);
    expect(verified.subject).toBe("system:serviceaccount:deploy:deployer");
  });
});
