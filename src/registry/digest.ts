import { createHash, type Hash } from "node:crypto";
import { FerryError } from "../common/errors.ts";

/**
 * The digests Ferry accepts: the two algorithms the OCI image spec registers, lower-case hex of the
 * exact length. Anything else is refused rather than trusted unverified.
 */
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** True when `value` is a `sha256:`/`sha512:` digest Ferry can verify. */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** Returns `value` when it is a verifiable digest; throws `bad_request` naming `what` otherwise. */
export function assertDigest(value: string, what = "digest"): string {
  if (!isDigest(value)) {
    throw new FerryError(
      "bad_request",
      `${what} "${value}" is not a digest Ferry can verify (expected sha256:<64 hex> or sha512:<128 hex>)`,
    );
  }
  return value;
}

/** The `sha256:<hex>` digest of exactly these bytes. */
export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** An incremental hasher for the algorithm of `digest`, to check content as it streams. */
export function hasherFor(digest: string): { update(chunk: Uint8Array): void; digest(): string } {
  const algorithm = assertDigest(digest).split(":")[0]!;
  const hash: Hash = createHash(algorithm);
  return {
    update: (chunk) => {
      hash.update(chunk);
    },
    digest: () => `${algorithm}:${hash.digest("hex")}`,
  };
}

/** Throws `digest_mismatch` unless `bytes` hash to `expected` (in `expected`'s own algorithm). */
export function verifyBytes(bytes: Uint8Array, expected: string, what: string): void {
  const hasher = hasherFor(expected);
  hasher.update(bytes);
  const actual = hasher.digest();
  if (actual !== expected) {
    throw new FerryError("digest_mismatch", `${what}: content hashes to ${actual}, not ${expected}`);
  }
}

/**
 * The tag under which the referrers tag schema keeps the referrers of `digest` (`sha256-<hex>`),
 * which is also the stem of cosign's legacy `.sig`/`.att`/`.sbom` tags.
 */
export function digestTag(digest: string): string {
  return assertDigest(digest).replace(":", "-").slice(0, 128);
}
