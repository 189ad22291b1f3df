import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/credentials/rate-limit.ts";

describe("RateLimiter", () => {
  it("allows the budget, then says how long to wait, and refills evenly", () => {
    let now = 0;
    const limiter = new RateLimiter({ now: () => now });
    const rate = { requests: 3, perMs: 60_000 };
    expect([1, 2, 3].map(() => limiter.take("a", rate).allowed)).toEqual([true, true, true]);
    expect(limiter.take("a", rate)).toEqual({ allowed: false, retryAfterSeconds: 20 });
    expect(limiter.take("b", rate).allowed).toBe(true);
    now += 19_999;
    expect(limiter.take("a", rate).allowed).toBe(false);
    now += 1;
    expect(limiter.take("a", rate).allowed).toBe(true);
    now += 10 * 60_000;
    expect([1, 2, 3, 4].map(() => limiter.take("a", rate).allowed)).toEqual([true, true, true, false]);
  });

  it("forgets the least recently used identity beyond its bound", () => {
    const limiter = new RateLimiter({ now: () => 0, maxKeys: 2 });
    const rate = { requests: 1, perMs: 60_000 };
    limiter.take("a", rate);
    limiter.take("b", rate);
    limiter.take("c", rate);
    // "a" was dropped: it starts with a full budget again; "c" was kept.
    expect(limiter.take("a", rate).allowed).toBe(true);
    expect(limiter.take("c", rate).allowed).toBe(false);
  });
});
