import { constants, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

/**
 * JWS signatures (RFC 7515/7518) on node:crypto's asynchronous sign/verify, which run in libuv's
 * thread pool. jose does the same through WebCrypto, whose jobs run on the event loop's thread in
 * Node 24 (measured: 30-65 µs per RS256 verify and 55-110 µs per ES256 sign of event-loop time),
 * which would cap the token endpoint at one core. node:crypto only takes the work off the event
 * loop when it is handed the bare `KeyObject`: given `{ key, dsaEncoding }` (or any options
 * object), Node 24 does much of the operation on the calling thread anyway (measured, event-loop
 * time: 47 µs per ES256 sign and 82 µs per ES256 verify, 24 µs per RS256 verify, against 9, 15
 * and 6 µs with the bare key). So ECDSA keys go in bare and the signature is converted between
 * DER, which node:crypto speaks by default, and JWS's raw R||S here; only RSA-PSS, which needs its
 * padding options, still pays that cost. Everything
 * around the signature (header rules, algorithm allow-lists, key selection, claims) stays Ferry's;
 * jose remains the independent check in the tests (every algorithm here is verified against tokens
 * jose signs, and jose verifies every token Ferry mints).
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

/** An ECDSA curve's order n and ⌊n/2⌋, big-endian in the width of R and S. */
interface CurveOrder {
  n: Buffer;
  half: Buffer;
}

function curveOrder(n: bigint, bytes: number): CurveOrder {
  const toBytes = (v: bigint) => Buffer.from(v.toString(16).padStart(bytes * 2, "0"), "hex");
  return { n: toBytes(n), half: toBytes(n >> 1n) };
}

interface AlgSpec {
  digest: string | null;
  kty: "rsa" | "ec" | "ed25519";
  /** ECDSA: the curve (node's name), the raw R||S signature length and the curve's order n. */
  curve?: string;
  signatureBytes?: number;
  order?: CurveOrder;
  pss?: boolean;
}

const SPECS: Record<string, AlgSpec> = {
  RS256: { digest: "sha256", kty: "rsa" },
  RS384: { digest: "sha384", kty: "rsa" },
  RS512: { digest: "sha512", kty: "rsa" },
  PS256: { digest: "sha256", kty: "rsa", pss: true },
  PS384: { digest: "sha384", kty: "rsa", pss: true },
  PS512: { digest: "sha512", kty: "rsa", pss: true },
  ES256: {
    digest: "sha256",
    kty: "ec",
    curve: "prime256v1",
    signatureBytes: 64,
    order: curveOrder(0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, 32),
  },
  ES384: {
    digest: "sha384",
    kty: "ec",
    curve: "secp384r1",
    signatureBytes: 96,
    order: curveOrder(
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
      48,
    ),
  },
  ES512: {
    digest: "sha512",
    kty: "ec",
    curve: "secp521r1",
    signatureBytes: 132,
    order: curveOrder(
      0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
      66,
    ),
  },
  EdDSA: { digest: null, kty: "ed25519" },
};

/** What {@link keyProblem} found per key and algorithm: key objects are immutable, ask once. */
const problems = new WeakMap<KeyObject, Map<string, string | undefined>>();

/** Why a key cannot be used with an algorithm, or undefined when it can. */
export function keyProblem(alg: string, key: KeyObject): string | undefined {
  const known = problems.get(key) ?? new Map<string, string | undefined>();
  if (known.has(alg)) return known.get(alg);
  const problem = findKeyProblem(alg, key);
  known.set(alg, problem);
  problems.set(key, known);
  return problem;
}

function findKeyProblem(alg: string, key: KeyObject): string | undefined {
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

/** The key as node:crypto gets it: bare (see the top of this file) unless RSA-PSS needs options. */
function keyInput(spec: AlgSpec, key: KeyObject) {
  if (spec.pss)
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  return key;
}

/** Reads a DER length at `at`: [length, offset of the content]; -1 when malformed. */
function derLength(der: Uint8Array, at: number): [number, number] {
  const first = der[at];
  if (first === undefined) return [-1, 0];
  if (first < 0x80) return [first, at + 1];
  const bytes = first & 0x7f;
  if (bytes === 0 || bytes > 2) return [-1, 0];
  let length = 0;
  for (let i = 1; i <= bytes; i++) length = length * 256 + (der[at + i] ?? Number.NaN);
  return Number.isNaN(length) ? [-1, 0] : [length, at + 1 + bytes];
}

function derLengthBytes(length: number): number[] {
  return length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : [0x82, length >> 8, length & 0xff];
}

/** An ECDSA signature from DER (`SEQUENCE { r INTEGER, s INTEGER }`) to JWS's R||S, each `size` bytes. */
export function derToRaw(der: Uint8Array, size: number): Buffer {
  const raw = Buffer.alloc(size * 2);
  if (der[0] !== 0x30) throw new Error("not a DER ECDSA signature");
  let [, at] = derLength(der, 1);
  for (let part = 0; part < 2; part++) {
    if (der[at] !== 0x02) throw new Error("not a DER ECDSA signature");
    const [length, start] = derLength(der, at + 1);
    if (length < 1) throw new Error("not a DER ECDSA signature");
    let from = start;
    let n = length;
    while (n > size && der[from] === 0) {
      from++;
      n--;
    }
    if (n > size || from + n > der.length) throw new Error("not a DER ECDSA signature");
    raw.set(der.subarray(from, from + n), part * size + size - n);
    at = start + length;
  }
  return raw;
}

/**
 * Rewrites a raw R||S ECDSA signature in place to its low-S form: (r, s) and (r, n − s) are both
 * valid, so Ferry always picks s ≤ n/2, the form verifiers that refuse malleable signatures demand,
 * and its tokens have one signature per signing input.
 */
function toLowS(raw: Buffer, order: CurveOrder): Buffer {
  const size = order.n.length;
  // s ≤ ⌊n/2⌋ (n is odd, so that is s ≤ n/2): already low. Byte-wise, to keep BigInt off this path.
  if (raw.compare(order.half, 0, size, size, 2 * size) <= 0) return raw;
  let borrow = 0;
  for (let i = size - 1; i >= 0; i--) {
    const digit = order.n[i]! - raw[size + i]! - borrow;
    raw[size + i] = digit & 0xff;
    borrow = digit < 0 ? 1 : 0;
  }
  return raw;
}

/** JWS's R||S to DER, for node:crypto (minimal INTEGERs, a leading zero where the top bit is set). */
export function rawToDer(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  const integer = (bytes: Uint8Array) => {
    let from = 0;
    while (from < bytes.length - 1 && bytes[from] === 0) from++;
    const body = bytes.subarray(from);
    const pad = (body[0] ?? 0) & 0x80 ? [0] : [];
    return [0x02, ...derLengthBytes(body.length + pad.length), ...pad, ...body];
  };
  const content = [...integer(raw.subarray(0, half)), ...integer(raw.subarray(half))];
  return Buffer.from([0x30, ...derLengthBytes(content.length), ...content]);
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
  let signature: Buffer = Buffer.from(token.slice(dot + 1), "base64url");
  if (spec.signatureBytes !== undefined) {
    if (signature.length !== spec.signatureBytes) return Promise.resolve(false);
    signature = rawToDer(signature);
  }
  return new Promise((resolve, reject) => {
    verify(spec.digest, data, keyInput(spec, key), signature, (err, ok) => (err ? reject(err) : resolve(ok)));
  });
}

/**
 * Signs `signingInput` (base64url header `.` base64url payload) and returns the compact JWS; an
 * ECDSA signature is always in its low-S form ({@link toLowS}).
 */
export function signJws(signingInput: string, alg: string, key: KeyObject): Promise<string> {
  const spec = SPECS[alg];
  if (spec === undefined) return Promise.reject(new Error(`unsupported algorithm ${alg}`));
  const size = spec.signatureBytes === undefined ? undefined : spec.signatureBytes / 2;
  return new Promise((resolve, reject) => {
    sign(spec.digest, Buffer.from(signingInput, "latin1"), keyInput(spec, key), (err, signature) => {
      if (err) {
        reject(err);
        return;
      }
      try {
        const raw = size === undefined ? signature : toLowS(derToRaw(signature, size), spec.order!);
        resolve(`${signingInput}.${raw.toString("base64url")}`);
      } catch (cause) {
        reject(cause);
      }
    });
  });
}

/** base64url of a JSON value, for building a JWS. */
export function b64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}
