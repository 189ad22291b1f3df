import { describe, expect, it } from "vitest";
import { FakeClock, systemClock } from "../../src/common/clock.ts";
import { newRecordId, uuidV7 } from "../../src/common/ids.ts";

describe("FakeClock", () => {
  it("wakes sleepers in time order, only once time has reached them, including sleeps started on the way", async () => {
    const clock = new FakeClock(1_000);
    const woke: string[] = [];
    void clock.sleep(300).then(() => woke.push(`b@${clock.now()}`));
    void clock.sleep(100).then(async () => {
      woke.push(`a@${clock.now()}`);
      await clock.sleep(100);
      woke.push(`a2@${clock.now()}`);
    });
    await clock.advance(99);
    expect(woke).toEqual([]);
    expect(clock.now()).toBe(1_099);
    await clock.advance(301);
    expect(woke).toEqual(["a@1100", "a2@1200", "b@1300"]);
    expect(clock.now()).toBe(1_400);
    expect(clock.sleepers).toBe(0);
  });

  it("jump moves time first, so late timers all see the time after the stall", async () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    void clock.sleep(10).then(() => seen.push(clock.now()));
    void clock.sleep(20).then(() => seen.push(clock.now()));
    await clock.jump(500);
    expect(seen).toEqual([500, 500]);
  });

  it("an aborted sleep rejects with the signal's reason and no longer counts as a sleeper", async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const sleeping = clock.sleep(1_000, controller.signal);
    await clock.whenSleeping(1);
    controller.abort(new Error("stop"));
    await expect(sleeping).rejects.toThrow("stop");
    expect(clock.sleepers).toBe(0);
    await expect(clock.sleep(1, controller.signal)).rejects.toThrow("stop");
    await expect(systemClock.sleep(60_000, controller.signal)).rejects.toThrow("stop");
  });
});

describe("record ids", () => {
  it("are UUIDv7: version 7, RFC variant, the time in the first 48 bits", () => {
    for (const id of [newRecordId(), uuidV7()]) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    const at = Date.UTC(2026, 11, 1, 8, 0, 0, 123);
    const id = uuidV7(at);
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(at);
    expect(uuidV7(at) < uuidV7(at + 1)).toBe(true);
  });
});
