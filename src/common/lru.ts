/**
 * A map that holds at most `max` entries and forgets the least recently used first: the one bound
 * behind every in-memory cache and per-key table, so a flood of distinct keys cannot grow memory
 * without limit. Reading ({@link LruMap.get}) or writing an entry makes it the most recently used.
 */
export class LruMap<K, V> {
  // Map iteration order is insertion order: re-inserting on use keeps the oldest entry first.
  readonly #entries = new Map<K, V>();
  readonly #max: number;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;

  /** `onEvict` hears of every entry dropped for room (not of {@link LruMap.delete}s). */
  constructor(max: number, onEvict?: (key: K, value: V) => void) {
    this.#max = max;
    this.#onEvict = onEvict;
  }

  /** The value under `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const value = this.#entries.get(key) as V;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** Stores `value` as the most recently used, then drops the least recently used beyond `max`. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.#max) {
      if (this.evictOldest() === undefined) break;
    }
  }

  /** Removes `key`; returns its value, undefined when absent. */
  delete(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const value = this.#entries.get(key) as V;
    this.#entries.delete(key);
    return value;
  }

  /** Drops the least recently used entry (telling `onEvict`) and returns it; undefined when empty. */
  evictOldest(): [K, V] | undefined {
    const oldest = this.#entries.entries().next();
    if (oldest.done) return undefined;
    const [key, value] = oldest.value;
    this.#entries.delete(key);
    this.#onEvict?.(key, value);
    return [key, value];
  }

  /** The number of entries. */
  get size(): number {
    return this.#entries.size;
  }
}
