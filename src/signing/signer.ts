import { sign as cryptoSign } from "node:crypto";
import type { SigningKey } from "./keys.ts";

/**
 * The port every signature Ferry makes goes through. The default is a PEM file on disk
 * ({@link keySigner}); a KMS can implement the same three members later.
 */
export interface Signer {
  /** SHA-256 of the DER public key, hex: names the key in records and bundle hints. */
  readonly keyId: string;
  readonly publicKeyPem: string;
  /** An ECDSA-P256-SHA256 signature over `data`, ASN.1 DER encoded (the form cosign stores). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** A {@link Signer} over Ferry's loaded signing key. */
export function keySigner(key: SigningKey): Signer {
  return {
    keyId: key.id,
    publicKeyPem: key.publicKeyPem,
    sign: async (data) =>
      new Uint8Array(cryptoSign("sha256", data, { key: key.privateKey, dsaEncoding: "der" })),
  };
}
