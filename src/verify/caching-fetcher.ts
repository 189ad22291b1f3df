import type { Clock } from "../common/clock.ts";
import { TtlCache } from "../common/ttl-cache.ts";
import type { Descriptor } from "../registry/manifest.ts";
import type { ArtifactFetcher, FetchOptions, ManifestObject } from "./ports.ts";

/** Objects addressed by digest never change: one shared cache serves every verification. */
export interface ImmutableObjectCache {
  manifests: TtlCache<ManifestObject>;
  blobs: TtlCache<Uint8Array>;
}

/** Bounds of {@link createImmutableCache}. */
export interface ImmutableCacheOptions {
  /** The byte budget shared by manifests and blobs (split between them: see below). */
  maxBytes: number;
  ttlMs?: number;
  /** Most entries of each kind (default 4,096). */
  maxEntries?: number;
  /** Times the expiry (default: the system clock). */
  clock?: Clock;
}

/**
 * A cache of immutable objects (by repository and digest), long-lived and bounded in bytes: blobs
 * get three quarters of the budget and manifests one quarter (manifests are small and read on every
 * verification, blobs are large and read once per candidate). An object larger than a quarter of
 * its part is not cached: re-reading it costs one request, keeping it could evict everything else.
 */
export function createImmutableCache(options: ImmutableCacheOptions): ImmutableObjectCache {
  const ttlMs = options.ttlMs ?? 24 * 3600_000;
  const max = options.maxEntries ?? 4096;
  const blobBytes = Math.floor((options.maxBytes * 3) / 4);
  const manifestBytes = options.maxBytes - blobBytes;
  const clock = options.clock ? { clock: options.clock } : {};
  return {
    manifests: new TtlCache({
      max,
      ttlMs,
      ...clock,
      size: (m) => m.bytes.byteLength,
      maxSize: manifestBytes,
      maxEntrySize: Math.floor(manifestBytes / 4),
    }),
    blobs: new TtlCache({
      max,
      ttlMs,
      ...clock,
      size: (b) => b.byteLength,
      maxSize: blobBytes,
      maxEntrySize: Math.floor(blobBytes / 4),
    }),
  };
}

/**
 * What a copy has just established that a repository holds, by digest, and where the same objects
 * were read and verified before (`from`, a fetcher location such as `reg.example/staging/web`).
 * Content addressing makes an object of digest D the same bytes in every repository, so a
 * verification of the copy may take them from `from`'s cache entries instead of reading them again;
 * only digests listed here are taken, so an object the copy did not establish is still asked for.
 */
export interface CopySeed {
  from: string;
  manifests: ReadonlySet<string>;
  blobs: ReadonlySet<string>;
}

/**
 * Serves manifests and blobs by digest from the cache, and in-flight requests once (two candidates
 * sharing a blob make one request). Tags and referrers are mutable and always go to the registry.
 * The key includes the repository: a digest present in one repository is not thereby present in another.
 *
 * One instance serves one verification: requests in flight are shared only within it, since they
 * carry its deadline's signal (another verification must not inherit a cancellation). Only settled,
 * successful objects enter the shared cache, so a failure or a cancelled read is never content.
 *
 * With a {@link CopySeed}, a manifest or blob the copy put in (or found in) this repository is
 * served from what the seed's repository cached; tags and referrers still go to this repository,
 * so a signature the copy did not carry is found missing here.
 */
export class CachingFetcher implements ArtifactFetcher {
  readonly #inner: ArtifactFetcher;
  readonly #cache: ImmutableObjectCache;
  readonly #pending = new Map<string, Promise<unknown>>();
  readonly #seed: CopySeed | undefined;

  constructor(inner: ArtifactFetcher, cache: ImmutableObjectCache, seed?: CopySeed) {
    this.#inner = inner;
    this.#cache = cache;
    this.#seed = seed;
  }

  /** The seed repository's cached copy of `digest`, when the copy established it is here too. */
  #seeded<T>(cache: TtlCache<T>, present: keyof Omit<CopySeed, "from">, digest: string): T | undefined {
    const seed = this.#seed;
    if (seed === undefined || !seed[present].has(digest)) return undefined;
    return cache.get(`${seed.from}@${digest}`);
  }

  get location(): string {
    return this.#inner.location;
  }

  #memo<T>(cache: TtlCache<T>, key: string, load: () => Promise<T>): Promise<T> {
    const hit = cache.get(key);
    if (hit !== undefined) return Promise.resolve(hit);
    const pending = this.#pending.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const loading = load().then(
      (value) => {
        this.#pending.delete(key);
        cache.set(key, value);
        return value;
      },
      (err: unknown) => {
        this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, loading);
    return loading;
  }

  manifest(digest: string, options?: FetchOptions): Promise<ManifestObject> {
    const cache = this.#cache.manifests;
    return this.#memo(cache, `${this.location}@${digest}`, () => {
      const seeded = this.#seeded(cache, "manifests", digest);
      return seeded ? Promise.resolve(seeded) : this.#inner.manifest(digest, options);
    });
  }

  blob(descriptor: Descriptor, maxBytes: number, options?: FetchOptions): Promise<Uint8Array> {
    const cache = this.#cache.blobs;
    return this.#memo(cache, `${this.location}@${descriptor.digest}`, () => {
      const seeded = this.#seeded(cache, "blobs", descriptor.digest);
      // The cap still applies: the seed's repository may have been read under another one.
      if (seeded && seeded.byteLength <= maxBytes) return Promise.resolve(seeded);
      return this.#inner.blob(descriptor, maxBytes, options);
    });
  }

  referrers(digest: string, options?: FetchOptions): Promise<Descriptor[]> {
    return this.#inner.referrers(digest, options);
  }

  async legacyTag(tag: string, options?: FetchOptions): Promise<ManifestObject | undefined> {
    const found = await this.#inner.legacyTag(tag, options);
    if (found) this.#cache.manifests.set(`${this.location}@${found.digest}`, found);
    return found;
  }
}
