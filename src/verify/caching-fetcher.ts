import type { Descriptor } from "../registry/manifest.ts";
import { TtlCache } from "./cache.ts";
import type { ArtifactFetcher, ManifestObject } from "./ports.ts";

/** Objects addressed by digest never change: one shared cache serves every verification. */
export interface ImmutableObjectCache {
  manifests: TtlCache<Promise<ManifestObject>>;
  blobs: TtlCache<Promise<Uint8Array>>;
}

/** A cache of immutable objects (by repository and digest), long-lived and bounded. */
export function createImmutableCache(max = 4096, ttlMs = 24 * 3600_000): ImmutableObjectCache {
  return { manifests: new TtlCache({ max, ttlMs }), blobs: new TtlCache({ max, ttlMs }) };
}

function memo<T>(cache: TtlCache<Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  const hit = cache.get(key);
  if (hit) return hit;
  const pending = load();
  cache.set(key, pending);
  // A failure is not content: forget it so the next verification asks again.
  pending.catch(() => {
    if (cache.get(key) === pending) cache.delete(key);
  });
  return pending;
}

/**
 * Serves manifests and blobs by digest from the cache, and in-flight requests once (two candidates
 * sharing a blob make one request). Tags and referrers are mutable and always go to the registry.
 * The key includes the repository: a digest present in one repository is not thereby present in another.
 */
export class CachingFetcher implements ArtifactFetcher {
  readonly #inner: ArtifactFetcher;
  readonly #cache: ImmutableObjectCache;

  constructor(inner: ArtifactFetcher, cache: ImmutableObjectCache) {
    this.#inner = inner;
    this.#cache = cache;
  }

  get location(): string {
    return this.#inner.location;
  }

  manifest(digest: string): Promise<ManifestObject> {
    return memo(this.#cache.manifests, `${this.location}@${digest}`, () => this.#inner.manifest(digest));
  }

  blob(descriptor: Descriptor, maxBytes: number): Promise<Uint8Array> {
    return memo(this.#cache.blobs, `${this.location}@${descriptor.digest}`, () =>
      this.#inner.blob(descriptor, maxBytes),
    );
  }

  referrers(digest: string): Promise<Descriptor[]> {
    return this.#inner.referrers(digest);
  }

  async legacyTag(tag: string): Promise<ManifestObject | undefined> {
    const found = await this.#inner.legacyTag(tag);
    if (found) this.#cache.manifests.set(`${this.location}@${found.digest}`, Promise.resolve(found));
    return found;
  }
}
