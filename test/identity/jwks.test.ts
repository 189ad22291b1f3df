import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { fetchableUrlProblem, isLoopbackHostname } from "../../src/common/url-policy.ts";
import { httpJsonFetcher, type JsonFetcher } from "../../src/identity/http-fetch.ts";
import { JWKS_DEFAULTS, keyFits, RemoteJwks } from "../../src/identity/jwks.ts";
import { type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { identityReasonOf } from "../support/outcomes.ts";

let issuer: OidcIssuer;

beforeAll(async () => {
  issuer = await startOidcIssuer({ algorithms: ["RS256", "ES256"] });
});
afterAll(async () => {
  await issuer?.stop();
});
afterEach(() => {
  issuer.clearRequests();
});

/** A clock the test moves by hand. */
const manualClock = () => new FakeClock(1_700_000_000_000);

const reasonOf = (promise: Promise<unknown>) => identityReasonOf(promise, "resolved");

function jwksFor(clock = manualClock(), over: { jwksUri?: string; allowInsecureHttp?: boolean } = {}) {
  return new RemoteJwks(
    { url: issuer.url, jwksUri: over.jwksUri, allowInsecureHttp: over.allowInsecureHttp ?? true },
    { fetcher: httpJsonFetcher, clock },
  );
}

describe("RemoteJwks", () => {
  it("finds the JWKS through discovery, then caches it for its TTL", async () => {
    const clock = manualClock();
    const jwks = jwksFor(clock);
    const rsa = issuer.keys.find((k) => k.alg === "RS256")!;
    await jwks.key(rsa.kid, "RS256");
    await jwks.key(rsa.kid, "RS256");
    expect(issuer.requests.map((r) => r.path)).toEqual([
      "/.well-known/openid-configuration",
      "/.well-known/jwks",
    ]);
    await clock.advance(JWKS_DEFAULTS.ttlMs - 1);
    await jwks.key(rsa.kid, "RS256");
    expect(issuer.jwksRequests()).toHaveLength(1);
    await clock.advance(1);
    await jwks.key(rsa.kid, "RS256");
    // Discovery is cached longer than the JWKS.
    expect(issuer.requests.map((r) => r.path)).toEqual([
      "/.well-known/openid-configuration",
      "/.well-known/jwks",
      "/.well-known/jwks",
    ]);
  });

  it("1,000 concurrent tokens with random kids: one refetch per cooldown window, none within it", async () => {
    const clock = manualClock();
    const jwks = jwksFor(clock, { jwksUri: issuer.jwksUri });
    await jwks.key(issuer.keys[0]!.kid, issuer.keys[0]!.alg);
    expect(issuer.jwksRequests()).toHaveLength(1);
    const flood = () =>
      Promise.all(
        Array.from({ length: 1000 }, (_, i) => reasonOf(jwks.key(`random-${i}-${Math.random()}`, "RS256"))),
      );
    // Inside the window after the first fetch: no refetch at all.
    expect(new Set(await flood())).toEqual(new Set(["key_unknown"]));
    expect(issuer.jwksRequests()).toHaveLength(1);
    // Past the window: the 1,000 misses share a single refetch.
    await clock.advance(JWKS_DEFAULTS.cooldownMs);
    expect(new Set(await flood())).toEqual(new Set(["key_unknown"]));
    expect(issuer.jwksRequests()).toHaveLength(2);
    expect(new Set(await flood())).toEqual(new Set(["key_unknown"]));
    expect(issuer.jwksRequests()).toHaveLength(2);
    await clock.advance(JWKS_DEFAULTS.cooldownMs);
    await flood();
    expect(issuer.jwksRequests()).toHaveLength(3);
  });

  it("picks up a rotated key on the first miss after the cooldown", async () => {
    const clock = manualClock();
    const jwks = jwksFor(clock, { jwksUri: issuer.jwksUri });
    await jwks.key(issuer.keys[0]!.kid, issuer.keys[0]!.alg);
    const rotated = await issuer.rotate("RS256");
    try {
      expect(await reasonOf(jwks.key(rotated.kid, "RS256"))).toBe("key_unknown");
      await clock.advance(JWKS_DEFAULTS.cooldownMs);
      expect(await reasonOf(jwks.key(rotated.kid, "RS256"))).toBe("resolved");
    } finally {
      issuer.retire(rotated.kid);
    }
  });

  it("selects by kid and algorithm, and without kid only when exactly one key fits", async () => {
    const jwks = jwksFor(manualClock(), { jwksUri: issuer.jwksUri });
    const es = issuer.keys.find((k) => k.alg === "ES256")!;
    expect(await reasonOf(jwks.key(es.kid, "ES256"))).toBe("resolved");
    // The EC key cannot verify RS256, whatever its kid says.
    expect(await reasonOf(jwks.key(es.kid, "RS256"))).toBe("key_unknown");
    // One RSA key and one EC key are published: without kid, each algorithm has exactly one fit.
    expect(await reasonOf(jwks.key(undefined, "ES256"))).toBe("resolved");
    const extra = await issuer.rotate("ES256");
    try {
      const fresh = jwksFor(manualClock(), { jwksUri: issuer.jwksUri });
      expect(await reasonOf(fresh.key(undefined, "ES256"))).toBe("key_unknown");
    } finally {
      issuer.retire(extra.kid);
    }
  });

  it("never uses a key marked for encryption, for another alg, or a private key", () => {
    expect(keyFits({ kty: "RSA", use: "enc" }, "RS256")).toBe(false);
    expect(keyFits({ kty: "RSA", alg: "PS256" }, "RS256")).toBe(false);
    expect(keyFits({ kty: "RSA", key_ops: ["encrypt"] }, "RS256")).toBe(false);
    expect(keyFits({ kty: "RSA", d: "secret" } as never, "RS256")).toBe(false);
    expect(keyFits({ kty: "EC", crv: "P-384" }, "ES256")).toBe(false);
    expect(keyFits({ kty: "OKP", crv: "Ed25519" }, "EdDSA")).toBe(true);
    expect(keyFits({ kty: "oct" }, "HS256")).toBe(false);
  });

  it("fails closed when the JWKS cannot be had, and does not retry within the cooldown", async () => {
    const clock = manualClock();
    issuer.setResponse("/.well-known/jwks", { status: 500, body: "{}" });
    try {
      const jwks = jwksFor(clock, { jwksUri: issuer.jwksUri });
      expect(await reasonOf(jwks.key("any", "RS256"))).toBe("issuer_unavailable");
      expect(await reasonOf(jwks.key("any", "RS256"))).toBe("issuer_unavailable");
      expect(issuer.jwksRequests()).toHaveLength(1);
      await clock.advance(JWKS_DEFAULTS.cooldownMs);
      issuer.setResponse("/.well-known/jwks", undefined);
      expect(await reasonOf(jwks.key(issuer.keys[0]!.kid, issuer.keys[0]!.alg))).toBe("resolved");
    } finally {
      issuer.setResponse("/.well-known/jwks", undefined);
    }
  });

  it("refuses an oversized JWKS, a discovery document naming another issuer, and a bad redirect", async () => {
    issuer.setResponse("/big", { status: 200, body: JSON.stringify({ keys: [], pad: "x".repeat(70_000) }) });
    issuer.setResponse("/away", { status: 302, headers: { location: "http://192.0.2.1/jwks" } });
    issuer.setResponse("/around", { status: 302, headers: { location: "/.well-known/jwks" } });
    try {
      expect(
        await reasonOf(jwksFor(manualClock(), { jwksUri: `${issuer.origin}/big` }).key("k", "RS256")),
      ).toBe("issuer_unavailable");
      expect(
        await reasonOf(jwksFor(manualClock(), { jwksUri: `${issuer.origin}/away` }).key("k", "RS256")),
      ).toBe("issuer_unavailable");
      const around = jwksFor(manualClock(), { jwksUri: `${issuer.origin}/around` });
      expect(await reasonOf(around.key(issuer.keys[0]!.kid, issuer.keys[0]!.alg))).toBe("resolved");
    } finally {
      issuer.setResponse("/big", undefined);
      issuer.setResponse("/away", undefined);
      issuer.setResponse("/around", undefined);
    }
    const liar = await startOidcIssuer({ discoveryIssuer: "https://token.actions.githubusercontent.com" });
    try {
      const jwks = new RemoteJwks({ url: liar.url, allowInsecureHttp: true }, { fetcher: httpJsonFetcher });
      expect(await reasonOf(jwks.key(liar.keys[0]!.kid, "RS256"))).toBe("issuer_unavailable");
      expect(liar.jwksRequests()).toHaveLength(0);
    } finally {
      await liar.stop();
    }
  });

  it("fetches plain http only from loopback and only when allowed, before any request is made", async () => {
    const jwks = jwksFor(manualClock(), { jwksUri: issuer.jwksUri, allowInsecureHttp: false });
    expect(await reasonOf(jwks.key("k", "RS256"))).toBe("issuer_unavailable");
    expect(issuer.requests).toHaveLength(0);
    const seen: string[] = [];
    const recording: JsonFetcher = {
      getJson: (url, options) => {
        seen.push(url);
        return httpJsonFetcher.getJson(url, options);
      },
    };
    const remote = new RemoteJwks(
      { url: "http://issuer.example", jwksUri: "http://issuer.example/jwks", allowInsecureHttp: true },
      { fetcher: recording },
    );
    expect(await reasonOf(remote.key("k", "RS256"))).toBe("issuer_unavailable");
    expect(seen).toEqual(["http://issuer.example/jwks"]);
  });
});

describe("the https/loopback rule", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["[::1]", true],
    ["::ffff:127.0.0.1", true],
    ["localhost", false],
    ["10.0.0.1", false],
    ["127.0.0.1.nip.io", false],
  ])("%s is loopback: %s", (host, loopback) => {
    expect(isLoopbackHostname(host)).toBe(loopback);
  });

  it("allows https always, loopback http only when asked, nothing else", () => {
    expect(fetchableUrlProblem("https://token.actions.githubusercontent.com", false)).toBeUndefined();
    expect(fetchableUrlProblem("http://127.0.0.1:9000/jwks", true)).toBeUndefined();
    expect(fetchableUrlProblem("http://127.0.0.1:9000/jwks", false)).toMatch(/allowInsecureHttp/);
    expect(fetchableUrlProblem("http://issuer.example/jwks", true)).toMatch(/loopback/);
    expect(fetchableUrlProblem("ftp://issuer.example/jwks", true)).toMatch(/https/);
    expect(fetchableUrlProblem("https://user:pw@issuer.example/jwks", false)).toMatch(/credentials/);
  });
});
