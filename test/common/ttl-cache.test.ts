import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { TtlCache } from "../../src/common/ttl-cache.ts";

describe("TtlCache byte budget", () => {
  const bytes = (n: number) => new Uint8Array(n);
  const cache = () =>
    new TtlCache<Uint8Array>({
      max: 100,
      ttlMs: 60_000,
      size: (b) => b.byteLength,
      maxSize: 100,
      maxEntrySize: 40,
    });

  it("evicts the least recently used entries once the sizes pass the budget", () => {
    const c = cache();
    c.set("a", bytes(40));
    c.set("b", bytes(40));
    c.get("a"); // a is now the most recently used
    c.set("c", bytes(30));
    expect(c.totalSize).toBe(70);
    expect([c.get("a")?.length, c.get("b"), c.get("c")?.length]).toEqual([40, undefined, 30]);
  });

  it("does not keep an entry larger than its entry limit, and drops the old value under that key", () => {
    const c = cache();
    c.set("a", bytes(10));
    c.set("a", bytes(41));
    expect(c.get("a")).toBeUndefined();
    expect([c.size, c.totalSize]).toEqual([0, 0]);
  });

  it("counts a replaced or deleted entry once", () => {
    const c = cache();
    c.set("a", bytes(30));
    c.set("a", bytes(20));
    c.set("b", bytes(5));
    c.delete("b");
    expect(c.totalSize).toBe(20);
  });

  it("expires entries on its clock, and still bounds the count", async () => {
    const clock = new FakeClock(0);
    const c = new TtlCache<string>({ max: 2, ttlMs: 10, clock });
    c.set("a", "1");
    c.set("b", "2");
    c.set("c", "3");
    expect(c.get("a")).toBeUndefined();
    await clock.advance(9);
    expect(c.get("b")).toBe("2");
    await clock.advance(1);
    expect(c.get("b")).toBeUndefined();
  });
});
