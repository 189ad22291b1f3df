import { describe, expect, it } from "vitest";
import { LruMap } from "../../src/common/lru.ts";

describe("LruMap", () => {
  it("drops the least recently used entry beyond its bound, a read counting as a use", () => {
    const evicted: string[] = [];
    const m = new LruMap<string, number>(2, (key) => evicted.push(key));
    m.set("a", 1);
    m.set("b", 2);
    expect(m.get("a")).toBe(1); // b is now the oldest
    m.set("c", 3);
    expect(evicted).toEqual(["b"]);
    expect([m.get("a"), m.get("b"), m.get("c"), m.size]).toEqual([1, undefined, 3, 2]);
  });

  it("re-setting a key refreshes it without growing, and delete tells no one", () => {
    const evicted: string[] = [];
    const m = new LruMap<string, number>(2, (key) => evicted.push(key));
    m.set("a", 1);
    m.set("b", 2);
    m.set("a", 10);
    m.set("c", 3);
    expect(evicted).toEqual(["b"]);
    expect(m.delete("a")).toBe(10);
    expect(m.delete("a")).toBeUndefined();
    expect(evicted).toEqual(["b"]);
    expect(m.evictOldest()).toEqual(["c", 3]);
    expect(m.evictOldest()).toBeUndefined();
    expect(evicted).toEqual(["b", "c"]);
  });
});
