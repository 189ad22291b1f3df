import { isDigest, sha256, verifyBytes } from "./digest.ts";
import { parseManifest } from "./manifest.ts";
import type { FetchedManifest } from "./ports.ts";

/**
 * Checks and parses manifest bytes read for `reference`. Read by digest, the bytes must hash to it;
 * read by tag, they must hash to the digest the server announced (`Docker-Content-Digest`), when it
 * announced one, and their own sha256 is their digest.
 */
export function verifiedManifest(
  bytes: Uint8Array,
  contentType: string | undefined,
  reference: string,
  announced: string | null | undefined,
  where: string,
): FetchedManifest {
  let digest: string;
  if (isDigest(reference)) {
    verifyBytes(bytes, reference, where);
    digest = reference;
  } else if (announced && isDigest(announced)) {
    verifyBytes(bytes, announced, where);
    digest = announced;
  } else {
    digest = sha256(bytes);
  }
  const manifest = parseManifest(bytes, contentType, where);
  return { descriptor: { mediaType: manifest.mediaType, digest, size: bytes.byteLength }, bytes, manifest };
}
