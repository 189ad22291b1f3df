import { type Clock, systemClock } from "./clock.ts";
import { LruMap } from "./lru.ts";

/** A rate: `requests` per `perMs`, refilled evenly. */
export interface Rate {
  requests: number;
  perMs: number;
}

/** The answer of {@link RateLimiter.take}: allowed, or how long to wait. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Per-key token buckets (one per identity), in memory: each replica limits on its own, which bounds
 * the total at replicas × rate. Buckets are kept for at most `maxKeys` identities (least recently
 * used dropped first), so a flood of distinct subjects cannot grow memory without bound.
 */
export class RateLimiter {
  readonly #buckets: LruMap<string, Bucket>;
  readonly #clock: Clock;

  constructor(options: { clock?: Clock; maxKeys?: number } = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#buckets = new LruMap(options.maxKeys ?? 100_000);
  }

  /** Takes one request from `key`'s budget. */
  take(key: string, rate: Rate): RateDecision {
    const now = this.#clock.now();
    const perMsRefill = rate.requests / rate.perMs;
    const previous = this.#buckets.get(key);
    const bucket = previous
      ? { tokens: Math.min(rate.requests, previous.tokens + (now - previous.at) * perMsRefill), at: now }
      : { tokens: rate.requests, at: now };
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMsRefill / 1000)),
    };
  }
}
