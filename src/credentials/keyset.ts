import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, type JWK } from "jose";
import { StartupError } from "../common/startup-error.ts";
import { IdentityError } from "../identity/errors.ts";
import type { KeySource, VerificationKey } from "../identity/jwks.ts";
import type { SigningKey } from "../signing/keys.ts";

/** The only algorithm Ferry signs tokens with (its key is ECDSA P-256). */
export const FERRY_TOKEN_ALG = "ES256";

/** One public key Ferry publishes: its JWK (with `kid`) and the key to verify with. */
export interface PublishedKey {
  kid: string;
  jwk: JWK;
  verifyKey: KeyObject;
}

/**
 * Ferry's token keys: the current signing key, and previous public keys kept in the JWKS after a
 * rotation so tokens signed before it keep verifying until they expire. `kid` is the RFC 7638 JWK
 * thumbprint, so the same key always has the same `kid` on every replica.
 */
export interface FerryKeySet extends KeySource {
  readonly current: PublishedKey & { signKey: KeyObject };
  readonly previous: readonly PublishedKey[];
  /** The JWKS document served at `/.well-known/jwks.json`. */
  jwks(): { keys: JWK[] };
}

async function publish(publicKey: KeyObject, source: string): Promise<PublishedKey> {
  if (publicKey.asymmetricKeyType !== "ec" || publicKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error(`${source}: a Ferry token key must be ECDSA P-256`);
  }
  const exported = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(exported, "sha256");
  return { kid, jwk: { ...exported, kid, alg: FERRY_TOKEN_ALG, use: "sig" }, verifyKey: publicKey };
}

/** Reads a previous key from PEM: a public key (SPKI), or a private key whose public half is published. */
export function publicKeyFromPem(pem: string, source: string): KeyObject {
  try {
    return pem.includes("PRIVATE KEY") ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  } catch (cause) {
    throw new Error(`${source}: not a PEM public or private key`, { cause });
  }
}

/**
 * Builds the key set from Ferry's signing key and the previous keys' PEM texts (`keys.previous`, in
 * order). A previous key equal to the current one is dropped; an unusable one is a
 * {@link StartupError} at `keys.previous[i]`.
 */
export async function createFerryKeySet(
  signing: SigningKey,
  previous: readonly { pem: string; source: string }[] = [],
): Promise<FerryKeySet> {
  const current = await publish(signing.publicKey, "keys.signing");
  const signKey = signing.privateKey;
  const older: PublishedKey[] = [];
  for (const [i, { pem, source }] of previous.entries()) {
    let key: PublishedKey;
    try {
      key = await publish(publicKeyFromPem(pem, source), source);
    } catch (err) {
      throw new StartupError([{ path: `keys.previous[${i}]`, message: (err as Error).message }], {
        cause: err,
      });
    }
    if (key.kid !== current.kid && !older.some((k) => k.kid === key.kid)) older.push(key);
  }
  const byKid = new Map([current, ...older].map((k) => [k.kid, k]));
  return {
    current: { ...current, signKey },
    previous: older,
    jwks: () => ({ keys: [current.jwk, ...older.map((k) => k.jwk)] }),
    async key(kid: string | undefined, alg: string): Promise<VerificationKey> {
      const found = kid === undefined ? undefined : byKid.get(kid);
      if (found === undefined || alg !== FERRY_TOKEN_ALG) {
        throw new IdentityError("key_unknown", "the token's `kid` is not one of Ferry's keys");
      }
      return found.verifyKey;
    },
  };
}
