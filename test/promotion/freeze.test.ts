import { describe, expect, it } from "vitest";
import { addWallClock, instantOf, offsetAt } from "../../src/common/zoned-time.ts";
import { compileFreeze, type FreezeState } from "../../src/promotion/freeze.ts";

const at = (iso: string) => Date.parse(iso);
const H = 3_600_000;
const BERLIN = "Europe/Berlin";
// "Friday 16:00 for 64 h, Europe/Berlin": the weekend freeze, ending Monday 08:00 local time.
const weekend = { cron: "0 16 * * 5", duration: 64 * H, timeZone: BERLIN };

function until(state: FreezeState): string | undefined {
  if (!state.frozen) throw new Error("expected frozen");
  return state.until === undefined ? undefined : new Date(state.until).toISOString();
}

describe("zoned wall-clock time", () => {
  it("knows Berlin's offsets on both sides of both changes", () => {
    expect(offsetAt(at("2026-03-29T00:59:59Z"), BERLIN)).toBe(1 * H);
    expect(offsetAt(at("2026-03-29T01:00:00Z"), BERLIN)).toBe(2 * H);
    expect(offsetAt(at("2026-10-25T00:59:59Z"), BERLIN)).toBe(2 * H);
    expect(offsetAt(at("2026-10-25T01:00:00Z"), BERLIN)).toBe(1 * H);
  });

  it("resolves a local time that never happens past the gap, and one that happens twice to the later instant", () => {
    // 02:30 on 29 March 2026 does not exist in Berlin; 02:30 on 25 October happens twice.
    expect(new Date(instantOf(at("2026-03-29T02:30:00Z"), BERLIN)).toISOString()).toBe(
      "2026-03-29T01:30:00.000Z",
    );
    expect(new Date(instantOf(at("2026-10-25T02:30:00Z"), BERLIN)).toISOString()).toBe(
      "2026-10-25T01:30:00.000Z",
    );
    expect(new Date(addWallClock(at("2026-03-27T15:00:00Z"), 64 * H, BERLIN)).toISOString()).toBe(
      "2026-03-30T06:00:00.000Z",
    );
  });
});

describe("recurring freeze windows", () => {
  const calendar = compileFreeze([weekend]);

  it("holds from Friday 16:00 to Monday 08:00 local time in an ordinary week (64 h)", () => {
    expect(calendar.at(at("2026-03-20T14:59:59Z")).frozen).toBe(false);
    expect(until(calendar.at(at("2026-03-20T15:00:00Z")))).toBe("2026-03-23T07:00:00.000Z");
    expect(until(calendar.at(at("2026-03-22T12:00:00Z")))).toBe("2026-03-23T07:00:00.000Z");
    expect(calendar.at(at("2026-03-23T06:59:59Z")).frozen).toBe(true);
    expect(calendar.at(at("2026-03-23T07:00:00Z")).frozen).toBe(false);
  });

  it("ends Monday 08:00 local after the clocks go forward on the last Sunday of March (63 h elapsed)", () => {
    const state = calendar.at(at("2026-03-28T12:00:00Z"));
    expect(until(state)).toBe("2026-03-30T06:00:00.000Z"); // 08:00 CEST
    expect(state.frozen && state.window.start).toBe(at("2026-03-27T15:00:00Z")); // 16:00 CET
    expect(calendar.at(at("2026-03-30T05:59:59Z")).frozen).toBe(true);
    expect(calendar.at(at("2026-03-30T06:00:00Z")).frozen).toBe(false);
  });

  it("ends Monday 08:00 local after the clocks go back on the last Sunday of October (65 h elapsed)", () => {
    expect(calendar.at(at("2026-10-23T13:59:59Z")).frozen).toBe(false);
    const state = calendar.at(at("2026-10-23T14:00:00Z")); // 16:00 CEST
    expect(until(state)).toBe("2026-10-26T07:00:00.000Z"); // 08:00 CET
    expect(calendar.at(at("2026-10-26T06:59:59Z")).frozen).toBe(true);
    expect(calendar.at(at("2026-10-26T07:00:00Z")).frozen).toBe(false);
  });

  it("opens a window whose start falls in the spring gap at the end of the gap", () => {
    const nightly = compileFreeze([{ cron: "30 2 * * *", duration: H, timeZone: BERLIN }]);
    // 02:30 does not exist on 29 March: the window opens at 03:00 CEST and lasts to 04:00 CEST.
    expect(nightly.at(at("2026-03-29T00:59:59Z")).frozen).toBe(false);
    expect(until(nightly.at(at("2026-03-29T01:00:00Z")))).toBe("2026-03-29T02:00:00.000Z");
  });

  it("ends a window whose end happens twice at the second pass (fail closed)", () => {
    const sunday = compileFreeze([{ cron: "30 1 * * 0", duration: H, timeZone: BERLIN }]);
    // Opens 01:30 CEST; 02:30 local comes first at 00:30Z (CEST), again at 01:30Z (CET).
    expect(until(sunday.at(at("2026-10-24T23:30:00Z")))).toBe("2026-10-25T01:30:00.000Z");
    expect(sunday.at(at("2026-10-25T00:45:00Z")).frozen).toBe(true);
    expect(sunday.at(at("2026-10-25T01:30:00Z")).frozen).toBe(false);
  });

  it("finds a window opened in the first pass of the repeated hour that outlasts a later one", () => {
    // Starts at 02:00 and 02:40 local, in both passes of 25 October's repeated hour, 30 min each.
    const calendar = compileFreeze([{ cron: "0,40 2 * * *", duration: 30 * 60_000, timeZone: BERLIN }]);
    // The latest start before 01:35Z is 02:00 CET (01:00Z), whose window ended at 02:30 CET (01:30Z);
    // the 02:40 CEST (00:40Z) window lasts to 03:10 local, which is CET by then: 02:10Z.
    const state = calendar.at(at("2026-10-25T01:35:00Z"));
    expect(state.frozen && state.window.start).toBe(at("2026-10-25T00:40:00Z"));
    expect(until(state)).toBe("2026-10-25T02:10:00.000Z");
  });

  it("reads the cron expression in its zone", () => {
    const ny = compileFreeze([{ cron: "0 9 * * 1", duration: H, timeZone: "America/New_York" }]);
    expect(ny.at(at("2026-03-16T12:59:59Z")).frozen).toBe(false);
    expect(until(ny.at(at("2026-03-16T13:00:00Z")))).toBe("2026-03-16T14:00:00.000Z"); // 09:00 EDT
  });
});

describe("absolute and overlapping windows", () => {
  it("holds an absolute window from its start, excludes its end", () => {
    const cal = compileFreeze([{ from: "2026-12-24T00:00:00+01:00", to: "2026-12-27T00:00:00+01:00" }]);
    expect(cal.at(at("2026-12-23T22:59:59Z")).frozen).toBe(false);
    expect(until(cal.at(at("2026-12-23T23:00:00Z")))).toBe("2026-12-26T23:00:00.000Z");
    expect(cal.at(at("2026-12-26T23:00:00Z")).frozen).toBe(false);
  });

  it("waits to the end of the merged run of overlapping and abutting windows, not past a gap", () => {
    const cal = compileFreeze([
      { from: "2026-05-01T00:00:00Z", to: "2026-05-05T00:00:00Z" },
      { from: "2026-05-04T00:00:00Z", to: "2026-05-08T00:00:00Z" }, // overlaps the first
      { from: "2026-05-08T00:00:00Z", to: "2026-05-10T00:00:00Z" }, // abuts the second
      { from: "2026-05-10T00:00:01Z", to: "2026-05-12T00:00:00Z" }, // a second's gap: not merged
    ]);
    const state = cal.at(at("2026-05-02T00:00:00Z"));
    expect(until(state)).toBe("2026-05-10T00:00:00.000Z");
    expect(state.frozen && state.window.rule).toBe(0);
    expect(until(cal.at(at("2026-05-09T00:00:00Z")))).toBe("2026-05-10T00:00:00.000Z");
    expect(cal.at(at("2026-05-10T00:00:00Z")).frozen).toBe(false);
  });

  it("merges a recurring window with an absolute one that starts when it ends", () => {
    const cal = compileFreeze([
      weekend,
      { from: "2026-03-23T08:00:00+01:00", to: "2026-03-23T12:00:00+01:00" }, // Monday morning
    ]);
    expect(until(cal.at(at("2026-03-21T10:00:00Z")))).toBe("2026-03-23T11:00:00.000Z");
  });

  it("reports the window that ends last when several hold the instant", () => {
    const cal = compileFreeze([
      { from: "2026-05-01T00:00:00Z", to: "2026-05-03T00:00:00Z" },
      { from: "2026-04-30T00:00:00Z", to: "2026-05-06T00:00:00Z" },
    ]);
    const state = cal.at(at("2026-05-02T00:00:00Z"));
    expect(state.frozen && state.window.rule).toBe(1);
    expect(until(state)).toBe("2026-05-06T00:00:00.000Z");
  });

  it("has no end in sight for windows that chain on without a break", () => {
    const cal = compileFreeze([{ cron: "* * * * *", duration: 2 * 60_000, timeZone: "UTC" }]);
    const state = cal.at(at("2026-05-02T00:00:30Z"));
    expect(state.frozen).toBe(true);
    expect(until(state)).toBeUndefined();
  });

  it("is never frozen without windows", () => {
    expect(compileFreeze([]).at(at("2026-05-02T00:00:00Z"))).toEqual({ frozen: false });
    expect(compileFreeze().at(0)).toEqual({ frozen: false });
  });
});
