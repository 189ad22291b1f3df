import { isFerryError } from "../common/errors.ts";
import { isDigest, sha256, verifyBytes } from "./digest.ts";
import { parseManifest } from "./manifest.ts";
import type { ArtifactReader, FetchedManifest, ReadOptions } from "./ports.ts";

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

/**
 * `reader.fetchManifest(reference)`, but undefined when the manifest is absent (`not_found`): what
 * {@link ArtifactReader.findManifest} means for every reader. Any other failure is rethrown.
 */
export async function fetchManifestIfPresent(
  reader: Pick<ArtifactReader, "fetchManifest">,
  reference: string,
  options?: ReadOptions,
): Promise<FetchedManifest | undefined> {
  try {
    return await reader.fetchManifest(reference, options);
  } catch (err) {
    if (isFerryError(err, "not_found")) return undefined;
    throw err;
  }
}
