import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { RateLimiter } from "../../src/common/rate-limit.ts";

describe("RateLimiter", () => {
  it("allows the budget, then says how long to wait, and refills evenly", async () => {
    const clock = new FakeClock(0);
    const limiter = new RateLimiter({ clock });
    const rate = { requests: 3, perMs: 60_000 };
    expect([1, 2, 3].map(() => limiter.take("a", rate).allowed)).toEqual([true, true, true]);
    expect(limiter.take("a", rate)).toEqual({ allowed: false, retryAfterSeconds: 20 });
    expect(limiter.take("b", rate).allowed).toBe(true);
    await clock.advance(19_999);
    expect(limiter.take("a", rate).allowed).toBe(false);
    await clock.advance(1);
    expect(limiter.take("a", rate).allowed).toBe(true);
    await clock.advance(10 * 60_000);
    expect([1, 2, 3, 4].map(() => limiter.take("a", rate).allowed)).toEqual([true, true, true, false]);
  });

  it("forgets the least recently used identity beyond its bound", () => {
    const limiter = new RateLimiter({ clock: new FakeClock(0), maxKeys: 2 });
    const rate = { requests: 1, perMs: 60_000 };
    limiter.take("a", rate);
    limiter.take("b", rate);
    limiter.take("c", rate);
    // "a" was dropped: it starts with a full budget again; "c" was kept.
    expect(limiter.take("a", rate).allowed).toBe(true);
    expect(limiter.take("c", rate).allowed).toBe(false);
  });
});
