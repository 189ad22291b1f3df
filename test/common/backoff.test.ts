import { describe, expect, it } from "vitest";
import { backoffDelay, isConnectionError, waitBeforeRetry } from "../../src/common/backoff.ts";
import { FakeClock } from "../../src/common/clock.ts";

const policy = { retries: 3, baseDelayMs: 200, maxDelayMs: 1_000 };

describe("backoffDelay", () => {
  it("jitters over a ceiling that doubles per retry up to the maximum", () => {
    const top = { ...policy, random: () => 0.999 };
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, top))).toEqual([199, 399, 799, 999]);
    expect(backoffDelay(3, { ...policy, random: () => 0 })).toBe(0);
  });

  it("honours Retry-After seconds as a floor, capped at the maximum, and ignores a date or junk", () => {
    const low = { ...policy, random: () => 0 };
    expect(backoffDelay(1, low, "0.5")).toBe(500);
    expect(backoffDelay(1, low, "60")).toBe(1_000);
    expect(backoffDelay(1, low, "Wed, 21 Oct 2015 07:28:00 GMT")).toBe(0);
    expect(backoffDelay(1, low, "-3")).toBe(0);
  });
});

describe("isConnectionError", () => {
  it("knows a connection failure by its code, through causes, never by its text", () => {
    expect(isConnectionError(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error("x"), { code: "UND_ERR_SOCKET" }))).toBe(true);
    expect(isConnectionError(new Error("ECONNRESET"))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });
});

describe("waitBeforeRetry", () => {
  it("waits the backoff on the clock, and stops at once when the signal aborts", async () => {
    const clock = new FakeClock(0);
    let woke = false;
    const waiting = waitBeforeRetry(clock, 2, { ...policy, random: () => 0.5 }).then(() => {
      woke = true;
    });
    await clock.advance(199);
    expect(woke).toBe(false);
    await clock.advance(1);
    await waiting;
    expect(woke).toBe(true);

    const controller = new AbortController();
    const cancelled = waitBeforeRetry(clock, 1, policy, { signal: controller.signal });
    controller.abort(new Error("deadline"));
    await expect(cancelled).rejects.toThrow("deadline");
  });
});
