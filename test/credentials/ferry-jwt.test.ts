import { generateKeyPairSync } from "node:crypto";
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { FerryJwtMinter } from "../../src/credentials/ferry-jwt.ts";
import { createFerryKeySet } from "../../src/credentials/keyset.ts";
import type { CredentialConfig } from "../../src/credentials/ports.ts";
import { isIdentityError } from "../../src/identity/errors.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { pipelineIssuer, verifiedToken } from "../support/identity.ts";

const signing = () => parseSigningKey(generateSigningKeyPem(), "test");

const pipelineToken = verifiedToken({
  issuer: pipelineIssuer({ audience: "x" }),
  subject: "repo:acme/web:environment:production",
  audience: ["x"],
});

const credential: CredentialConfig = {
  name: "deploy-production",
  environment: "production",
  type: "ferry-jwt",
  ttl: 5 * 60_000,
  audience: "https://deployer.example.com",
  allow: [],
};

describe("Ferry's key set", () => {
  it("names keys by their RFC 7638 thumbprint and publishes ES256 public keys only", async () => {
    const key = signing();
    const keys = await createFerryKeySet(key);
    const jwks = keys.jwks();
    expect(jwks.keys).toHaveLength(1);
    const [jwk] = jwks.keys;
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig", kid: keys.current.kid });
    expect(jwk).not.toHaveProperty("d");
    expect(await calculateJwkThumbprint(jwk!)).toBe(keys.current.kid);
    expect((await createFerryKeySet(key)).current.kid).toBe(keys.current.kid);
  });

  it("keeps previous keys (public or private PEM) published after a rotation, without duplicates", async () => {
    const old = signing();
    const older = signing();
    const current = signing();
    const keys = await createFerryKeySet(current, [
      { pem: old.publicKeyPem, source: "old.pub" },
      { pem: older.privateKey.export({ format: "pem", type: "pkcs8" }).toString(), source: "older.pem" },
      { pem: old.publicKeyPem, source: "old-again.pub" },
      { pem: current.publicKeyPem, source: "current.pub" },
    ]);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([
      keys.current.kid,
      (await createFerryKeySet(old)).current.kid,
      (await createFerryKeySet(older)).current.kid,
    ]);
    for (const k of keys.jwks().keys) expect(k).not.toHaveProperty("d");
  });

  it("refuses a previous key that is not ECDSA P-256, and an unknown kid", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
      format: "pem",
      type: "spki",
    });
    await expect(createFerryKeySet(signing(), [{ pem: rsa.toString(), source: "rsa.pub" }])).rejects.toThrow(
      /P-256/,
    );
    await expect(createFerryKeySet(signing(), [{ pem: "garbage", source: "x.pem" }])).rejects.toThrow(
      /x\.pem/,
    );
    const keys = await createFerryKeySet(signing());
    await expect(keys.key("nope", "ES256")).rejects.toSatisfy((e) => isIdentityError(e, "key_unknown"));
    await expect(keys.key(keys.current.kid, "RS256")).rejects.toSatisfy((e) =>
      isIdentityError(e, "key_unknown"),
    );
  });
});

describe("FerryJwtMinter", () => {
  it("mints an ES256 JWT with iss, sub, aud, act, jti, environment and exp = iat + ttl", async () => {
    const keys = await createFerryKeySet(signing());
    const now = 1_750_000_000_000;
    const minter = new FerryJwtMinter({
      keys,
      issuer: "https://ferry.example.com",
      clock: new FakeClock(now),
    });
    const issued = await minter.mint({ credential, token: pipelineToken, subjectToken: "t", requestId: "r" });
    const { payload, protectedHeader } = await jwtVerify(issued.accessToken, createLocalJWKSet(keys.jwks()), {
      issuer: "https://ferry.example.com",
      audience: "https://deployer.example.com",
      currentDate: new Date(now),
    });
    expect(protectedHeader).toEqual({ alg: "ES256", kid: keys.current.kid, typ: "JWT" });
    expect(payload).toEqual({
      iss: "https://ferry.example.com",
      sub: "repo:acme/web:environment:production",
      aud: "https://deployer.example.com",
      act: {
        iss: "https://token.actions.githubusercontent.com",
        sub: "repo:acme/web:environment:production",
      },
      environment: "production",
      credential: "deploy-production",
      jti: issued.id,
      iat: now / 1000,
      nbf: now / 1000,
      exp: now / 1000 + 300,
    });
    expect(issued).toMatchObject({ expiresIn: 300, expiresAt: now + 300_000, tokenType: "Bearer" });
  });
});
