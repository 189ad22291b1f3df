import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { compactVerify, exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
  b64urlJson,
  JWS_ALGORITHMS,
  keyProblem,
  publicKeyFromJwk,
  signJws,
  verifyJws,
} from "../../src/identity/jws.ts";

const claims = { sub: "repo:acme/web:ref:refs/heads/main", iat: 1_750_000_000 };

describe("JWS on node:crypto, checked against jose", () => {
  it.each(JWS_ALGORITHMS)("%s: verifies what jose signs, and nothing altered", async (alg) => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const token = await new SignJWT(claims).setProtectedHeader({ alg }).sign(privateKey);
    const key = publicKeyFromJwk((await exportJWK(publicKey)) as Record<string, unknown>, alg);
    expect(await verifyJws(token, alg, key)).toBe(true);
    const [h, , s] = token.split(".");
    expect(await verifyJws(`${h}.${b64urlJson({ ...claims, sub: "repo:evil/web" })}.${s}`, alg, key)).toBe(
      false,
    );
    expect(await verifyJws(`${h}.${token.split(".")[1]}.${s!.slice(0, -4)}AAAA`, alg, key)).toBe(false);
  });

  it("ES256 tokens Ferry signs verify with jose", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const token = await signJws(
      `${b64urlJson({ alg: "ES256", typ: "JWT" })}.${b64urlJson(claims)}`,
      "ES256",
      privateKey,
    );
    const { payload } = await compactVerify(token, publicKey, { algorithms: ["ES256"] });
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual(claims);
  });

  it.each([
    ["ES256", "P-256", 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n],
    [
      "ES384",
      "P-384",
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    ],
    [
      "ES512",
      "P-521",
      0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    ],
  ] as const)("%s: Ferry only signs low-S (s ≤ n/2), and jose verifies every one", async (alg, curve, n) => {
    // Unnormalised ECDSA is high-S half the time: 32 low-S signatures in a row by chance is 2^-32.
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
    const input = `${b64urlJson({ alg, typ: "JWT" })}.${b64urlJson(claims)}`;
    for (let i = 0; i < 32; i++) {
      const token = await signJws(input, alg, privateKey);
      const raw = Buffer.from(token.slice(token.lastIndexOf(".") + 1), "base64url");
      const s = BigInt(`0x${raw.subarray(raw.length / 2).toString("hex")}`);
      expect(s <= n / 2n).toBe(true);
      await compactVerify(token, publicKey, { algorithms: [alg] });
      expect(await verifyJws(token, alg, publicKey)).toBe(true);
    }
  });

  it("refuses keys that do not fit the algorithm", async () => {
    const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
    expect(keyProblem("RS256", rsa1024)).toMatch(/2048/);
    expect(keyProblem("ES256", p384)).toMatch(/prime256v1/);
    expect(keyProblem("ES256", rsa)).toMatch(/cannot verify/);
    expect(keyProblem("HS256", rsa)).toMatch(/unsupported/);
    expect(keyProblem("RS256", rsa)).toBeUndefined();
    await expect(verifyJws("a.b.c", "ES256", rsa as KeyObject)).rejects.toThrow();
    const jwk = (await exportJWK(rsa)) as Record<string, unknown>;
    expect(() => publicKeyFromJwk({ ...jwk, d: "x" }, "RS256")).toThrow(/private/);
    expect(() => publicKeyFromJwk(jwk, "ES256")).toThrow();
  });
});
