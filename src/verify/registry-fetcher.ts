import type { Descriptor } from "../registry/manifest.ts";
import type { ArtifactReader, FetchedManifest } from "../registry/ports.ts";
import type { ArtifactFetcher, ManifestObject } from "./ports.ts";

function toObject(fetched: FetchedManifest): ManifestObject {
  return { digest: fetched.descriptor.digest, bytes: fetched.bytes, manifest: fetched.manifest };
}

/**
 * {@link ArtifactFetcher} over the registry client's {@link ArtifactReader} for one repository. The
 * reader re-hashes everything it returns, follows the referrers API or its tag-schema fallback, and
 * owns auth, retries and timeouts; this adapter only narrows it to what verification reads.
 */
export class RegistryFetcher implements ArtifactFetcher {
  readonly #reader: ArtifactReader;

  constructor(reader: ArtifactReader) {
    this.#reader = reader;
  }

  get location(): string {
    return this.#reader.location;
  }

  async manifest(digest: string): Promise<ManifestObject> {
    return toObject(await this.#reader.fetchManifest(digest));
  }

  blob(descriptor: Descriptor, maxBytes: number): Promise<Uint8Array> {
    return this.#reader.fetchBlob(descriptor, { maxBytes });
  }

  referrers(digest: string): Promise<Descriptor[]> {
    return this.#reader.listReferrers(digest);
  }

  async legacyTag(tag: string): Promise<ManifestObject | undefined> {
    const found = await this.#reader.findManifest(tag);
    return found ? toObject(found) : undefined;
  }
}
