import { type Clock, systemClock } from "./clock.ts";
import { LruMap } from "./lru.ts";

/** Options of a {@link TtlCache}. */
export interface TtlCacheOptions<V> {
  /** The most entries kept. */
  max: number;
  ttlMs: number;
  /** What "now" is for expiry (default: the system clock). */
  clock?: Clock;
  /** The size of a value (e.g. its byte length), for `maxSize`; default 0 (only `max` counts). */
  size?: (value: V) => number;
  /** The most the sizes of all entries may add up to; the least recently used go first beyond it. */
  maxSize?: number;
  /**
   * A value larger than this is not kept at all (default: `maxSize`): one huge entry would
   * otherwise evict everything else for a single use.
   */
  maxEntrySize?: number;
}

interface Entry<V> {
  value: V;
  expires: number;
  size: number;
}

/**
 * A bounded map with per-entry expiry: at most `max` entries and, with a `size` function, at most
 * `maxSize` in all; the least recently used entry goes first when either is exceeded.
 */
export class TtlCache<V> {
  readonly #entries: LruMap<string, Entry<V>>;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  readonly #sizeOf: (value: V) => number;
  readonly #maxSize: number;
  readonly #maxEntrySize: number;
  #total = 0;

  constructor(options: TtlCacheOptions<V>) {
    this.#entries = new LruMap(options.max, (_key, entry) => {
      this.#total -= entry.size;
    });
    this.#ttlMs = options.ttlMs;
    this.#clock = options.clock ?? systemClock;
    this.#sizeOf = options.size ?? (() => 0);
    this.#maxSize = options.maxSize ?? Number.POSITIVE_INFINITY;
    this.#maxEntrySize = Math.min(options.maxEntrySize ?? this.#maxSize, this.#maxSize);
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.#clock.now()) {
      this.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value`, unless it alone is larger than `maxEntrySize` (then any old entry is dropped). */
  set(key: string, value: V): void {
    this.delete(key);
    const size = this.#sizeOf(value);
    if (size > this.#maxEntrySize) return;
    this.#total += size;
    this.#entries.set(key, { value, expires: this.#clock.now() + this.#ttlMs, size });
    while (this.#total > this.#maxSize) {
      if (this.#entries.evictOldest() === undefined) break;
    }
  }

  delete(key: string): void {
    const entry = this.#entries.delete(key);
    if (entry) this.#total -= entry.size;
  }

  /** The number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The sum of the sizes of the entries. */
  get totalSize(): number {
    return this.#total;
  }
}
