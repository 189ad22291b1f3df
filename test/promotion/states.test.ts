import { describe, expect, it } from "vitest";
import { isFerryError } from "../../src/common/errors.ts";
import {
  IllegalTransitionError,
  isFinal,
  PROMOTION_EVENTS,
  PROMOTION_STATES,
  type PromotionEvent,
  type PromotionState,
  TRANSITIONS,
  transition,
  UNFINISHED_STATES,
} from "../../src/promotion/states.ts";

// The legal moves, written out independently of the table so a change to it shows up here.
const LEGAL: [PromotionState, PromotionEvent, PromotionState][] = [
  ["pending", "wait", "waiting"],
  ["pending", "start", "running"],
  ["pending", "fail", "failed"],
  ["pending", "reject", "rejected"],
  ["pending", "cancel", "cancelled"],
  ["pending", "supersede", "superseded"],
  ["pending", "expire", "expired"],
  ["waiting", "wait", "waiting"],
  ["waiting", "start", "running"],
  ["waiting", "fail", "failed"],
  ["waiting", "reject", "rejected"],
  ["waiting", "cancel", "cancelled"],
  ["waiting", "supersede", "superseded"],
  ["waiting", "expire", "expired"],
  ["running", "succeed", "promoted"],
  ["running", "fail", "failed"],
];
const legal = new Set(LEGAL.map(([from, event]) => `${from}:${event}`));
const ILLEGAL = PROMOTION_STATES.flatMap((from) =>
  PROMOTION_EVENTS.filter((event) => !legal.has(`${from}:${event}`)).map((event) => [from, event] as const),
);

describe("promotion states", () => {
  it.each(LEGAL)("%s --%s--> %s", (from, event, to) => {
    expect(transition(from, event)).toBe(to);
  });

  it("has exactly these legal moves in its table", () => {
    const table = Object.entries(TRANSITIONS).flatMap(([from, row]) =>
      Object.entries(row).map(([event, to]) => [from, event, to]),
    );
    expect(table).toEqual(LEGAL);
  });

  it.each(ILLEGAL)("refuses %s --%s--> with a typed error", (from, event) => {
    let caught: unknown;
    try {
      transition(from, event);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(IllegalTransitionError);
    expect(isFerryError(caught, "conflict")).toBe(true);
    expect((caught as IllegalTransitionError).from).toBe(from);
    expect((caught as IllegalTransitionError).event).toBe(event);
  });

  it("counts every illegal pair (9 states x 8 events, 16 legal)", () => {
    expect(ILLEGAL).toHaveLength(9 * 8 - 16);
  });

  it("moves no finished promotion, whatever the event", () => {
    const finals = PROMOTION_STATES.filter(isFinal);
    expect(finals).toEqual(["promoted", "failed", "rejected", "cancelled", "superseded", "expired"]);
    expect(UNFINISHED_STATES).toEqual(["pending", "waiting", "running"]);
    for (const from of finals)
      for (const event of PROMOTION_EVENTS)
        expect(() => transition(from, event)).toThrow(IllegalTransitionError);
  });

  it("refuses states and events read from storage that are not in the table, prototype names included", () => {
    expect(() => transition("pending", "constructor" as PromotionEvent)).toThrow(IllegalTransitionError);
    expect(() => transition("toString" as PromotionState, "start")).toThrow(IllegalTransitionError);
    expect(() => transition("archived" as PromotionState, "start")).toThrow(IllegalTransitionError);
  });
});
