import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { parseCheckpointBody } from "./format.ts";
import { canonicalJson } from "./hash.ts";
import type { CheckpointBody, CheckpointSigner, SignedCheckpoint } from "./types.ts";

/**
 * Signs a checkpoint: the body's RFC 8785 canonical JSON is the signed file (`cp.json`), and the
 * base64 DER ECDSA signature over it is what `cosign verify-blob --key ferry.pub --signature cp.json.sig
 * --insecure-ignore-tlog cp.json` checks (cosign hashes the file with SHA-256 and verifies the DER
 * signature, as for any blob).
 */
export async function signCheckpoint(
  body: CheckpointBody,
  signer: CheckpointSigner,
): Promise<SignedCheckpoint> {
  const text = canonicalJson({ origin: body.origin, size: body.size, head: body.head, at: body.at });
  const signature = await signer.sign(new TextEncoder().encode(text));
  return {
    checkpoint: body,
    body: text,
    signature: Buffer.from(signature).toString("base64"),
    keyId: signer.keyId,
  };
}

/** A public key as a `KeyObject`, from a PEM or a key object. */
export function publicKeyOf(key: KeyObject | string): KeyObject {
  return typeof key === "string" ? createPublicKey(key) : key;
}

/**
 * Checks a checkpoint: the signature over the exact body bytes with `publicKey`, and that the bytes
 * are a checkpoint body. Returns the body the signature covers (never the unsigned `checkpoint`
 * copy), or why it is not valid.
 */
export function verifyCheckpoint(
  signed: Pick<SignedCheckpoint, "body" | "signature">,
  publicKey: KeyObject | string,
): { ok: true; checkpoint: CheckpointBody } | { ok: false; problem: string } {
  let valid = false;
  try {
    const signature = Buffer.from(signed.signature.trim(), "base64");
    valid = cryptoVerify("sha256", Buffer.from(signed.body, "utf8"), publicKeyOf(publicKey), signature);
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, problem: "the checkpoint's signature does not verify with this key" };
  const checkpoint = parseCheckpointBody(signed.body);
  if (checkpoint === undefined)
    return { ok: false, problem: "the signed checkpoint is not {origin, size, head, at}" };
  return { ok: true, checkpoint };
}
