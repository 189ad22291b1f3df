import { constants, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

/**
 * JWS signatures (RFC 7515/7518) on node:crypto's asynchronous sign/verify, which run in libuv's
 * thread pool. jose does the same through WebCrypto, whose jobs run on the event loop's thread in
 * Node 24 (measured: 30-65 µs per RS256 verify and 55-110 µs per ES256 sign of event-loop time,
 * against 7 µs and 33 µs here), which would cap the token endpoint at one core. Everything around
 * the signature (header rules, algorithm allow-lists, key selection, claims) stays Ferry's; jose
 * remains the independent check in the tests (every algorithm here is verified against tokens jose
 * signs, and jose verifies every token Ferry mints).
 */

/** The asymmetric JWS algorithms Ferry accepts. */
export const JWS_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

interface AlgSpec {
  digest: string | null;
  kty: "rsa" | "ec" | "ed25519";
  /** ECDSA: the curve (node's name) and the raw R||S signature length. */
  curve?: string;
  signatureBytes?: number;
  pss?: boolean;
}

const SPECS: Record<string, AlgSpec> = {
  RS256: { digest: "sha256", kty: "rsa" },
  RS384: { digest: "sha384", kty: "rsa" },
  RS512: { digest: "sha512", kty: "rsa" },
  PS256: { digest: "sha256", kty: "rsa", pss: true },
  PS384: { digest: "sha384", kty: "rsa", pss: true },
  PS512: { digest: "sha512", kty: "rsa", pss: true },
  ES256: { digest: "sha256", kty: "ec", curve: "prime256v1", signatureBytes: 64 },
  ES384: { digest: "sha384", kty: "ec", curve: "secp384r1", signatureBytes: 96 },
  ES512: { digest: "sha512", kty: "ec", curve: "secp521r1", signatureBytes: 132 },
  EdDSA: { digest: null, kty: "ed25519" },
};

/** Why a key cannot be used with an algorithm, or undefined when it can. */
export function keyProblem(alg: string, key: KeyObject): string | undefined {
  const spec = SPECS[alg];
  if (spec === undefined) return `unsupported algorithm ${alg}`;
  if (key.asymmetricKeyType !== spec.kty)
    return `a ${key.asymmetricKeyType ?? "symmetric"} key cannot verify ${alg}`;
  if (spec.kty === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    return "RSA keys under 2048 bits are refused";
  }
  if (spec.curve !== undefined && key.asymmetricKeyDetails?.namedCurve !== spec.curve) {
    return `${alg} needs curve ${spec.curve}`;
  }
  return undefined;
}

/** Imports a public JWK for `alg`; throws when the key is private, unfit or malformed. */
export function publicKeyFromJwk(jwk: Record<string, unknown>, alg: string): KeyObject {
  if ("d" in jwk) throw new Error("a private key is never used to verify");
  const key = createPublicKey({ key: jwk as never, format: "jwk" });
  const problem = keyProblem(alg, key);
  if (problem !== undefined) throw new Error(problem);
  return key;
}

function keyInput(spec: AlgSpec, key: KeyObject) {
  if (spec.pss)
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  if (spec.kty === "ec") return { key, dsaEncoding: "ieee-p1363" as const };
  return key;
}

/**
 * Verifies the signature of a compact JWS (already checked to be three base64url segments) with
 * `key` under `alg`. Resolves false for a wrong signature; rejects for an unusable key.
 */
export function verifyJws(token: string, alg: string, key: KeyObject): Promise<boolean> {
  const spec = SPECS[alg];
  const problem = keyProblem(alg, key);
  if (spec === undefined || problem !== undefined) return Promise.reject(new Error(problem));
  const dot = token.lastIndexOf(".");
  const data = Buffer.from(token.slice(0, dot), "latin1");
  const signature = Buffer.from(token.slice(dot + 1), "base64url");
  if (spec.signatureBytes !== undefined && signature.length !== spec.signatureBytes)
    return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    verify(spec.digest, data, keyInput(spec, key), signature, (err, ok) => (err ? reject(err) : resolve(ok)));
  });
}

/** Signs `signingInput` (base64url header `.` base64url payload) and returns the compact JWS. */
export function signJws(signingInput: string, alg: string, key: KeyObject): Promise<string> {
  const spec = SPECS[alg];
  if (spec === undefined) return Promise.reject(new Error(`unsupported algorithm ${alg}`));
  return new Promise((resolve, reject) => {
    sign(spec.digest, Buffer.from(signingInput, "latin1"), keyInput(spec, key), (err, signature) =>
      err ? reject(err) : resolve(`${signingInput}.${signature.toString("base64url")}`),
    );
  });
}

/** base64url of a JSON value, for building a JWS. */
export function b64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}
