import type { Descriptor } from "../registry/manifest.ts";
import type { ArtifactReader, FetchedManifest } from "../registry/ports.ts";
import type { ArtifactFetcher, FetchOptions, ManifestObject } from "./ports.ts";

function toObject(fetched: FetchedManifest): ManifestObject {
  return { digest: fetched.descriptor.digest, bytes: fetched.bytes, manifest: fetched.manifest };
}

/**
 * {@link ArtifactFetcher} over the registry client's {@link ArtifactReader} for one repository. The
 * reader re-hashes everything it returns, follows the referrers API or its tag-schema fallback, and
 * owns auth, retries and timeouts; this adapter only narrows it to what verification reads, and
 * hands the verification's signal down to `fetch`.
 */
export class RegistryFetcher implements ArtifactFetcher {
  readonly #reader: ArtifactReader;

  constructor(reader: ArtifactReader) {
    this.#reader = reader;
  }

  get location(): string {
    return this.#reader.location;
  }

  async manifest(digest: string, options: FetchOptions = {}): Promise<ManifestObject> {
    return toObject(await this.#reader.fetchManifest(digest, { signal: options.signal }));
  }

  blob(descriptor: Descriptor, maxBytes: number, options: FetchOptions = {}): Promise<Uint8Array> {
    return this.#reader.fetchBlob(descriptor, { maxBytes, signal: options.signal });
  }

  referrers(digest: string, options: FetchOptions = {}): Promise<Descriptor[]> {
    return this.#reader.listReferrers(digest, { signal: options.signal });
  }

  async legacyTag(tag: string, options: FetchOptions = {}): Promise<ManifestObject | undefined> {
    const found = await this.#reader.findManifest(tag, { signal: options.signal });
    return found ? toObject(found) : undefined;
  }
}
