import { FerryError } from "../common/errors.ts";

/** Every state a promotion can be in. */
export const PROMOTION_STATES = [
  "pending",
  "waiting",
  "running",
  "promoted",
  "failed",
  "rejected",
  "cancelled",
  "superseded",
  "expired",
] as const;
export type PromotionState = (typeof PROMOTION_STATES)[number];

/** What can happen to a promotion. */
export const PROMOTION_EVENTS = [
  /** A gate waits (soak, freeze, approvals); again while waiting, when `until` moves. */
  "wait",
  /** Every gate passed or was skipped: the steps start. */
  "start",
  /** Every step is done. */
  "succeed",
  /** A gate failed, or a step failed for good. */
  "fail",
  /** An approver rejected it. */
  "reject",
  /** Its requester (or an operator) withdrew it. */
  "cancel",
  /** A newer promotion of the same app and environment was promoted first. */
  "supersede",
  /** It waited longer than `promotion.maxWait`. */
  "expire",
] as const;
export type PromotionEvent = (typeof PROMOTION_EVENTS)[number];

/** Until its steps start, a promotion may wait (again), start, or end in any unfinished way. */
const BEFORE_STEPS: Readonly<Partial<Record<PromotionEvent, PromotionState>>> = {
  wait: "waiting",
  start: "running",
  fail: "failed",
  reject: "rejected",
  cancel: "cancelled",
  supersede: "superseded",
  expire: "expired",
};

/**
 * The transition table, as data: for each state, the events it accepts and where they lead. A
 * state with no entry is final. A running promotion cannot be cancelled, superseded or expired:
 * its steps copy and write to git, and stopping halfway would leave the target half-promoted.
 */
export const TRANSITIONS: Readonly<
  Record<PromotionState, Readonly<Partial<Record<PromotionEvent, PromotionState>>>>
> = {
  pending: BEFORE_STEPS,
  waiting: BEFORE_STEPS,
  running: { succeed: "promoted", fail: "failed" },
  promoted: {},
  failed: {},
  rejected: {},
  cancelled: {},
  superseded: {},
  expired: {},
};

// Own properties only: a state or event read from storage must not reach Object.prototype.
function rowOf(state: PromotionState): Readonly<Partial<Record<PromotionEvent, PromotionState>>> | undefined {
  return Object.hasOwn(TRANSITIONS, state) ? TRANSITIONS[state] : undefined;
}

/** True for a state no event leaves: the promotion is finished (and, failing closed, for an unknown state). */
export function isFinal(state: PromotionState): boolean {
  const row = rowOf(state);
  return row === undefined || Object.keys(row).length === 0;
}

/** States a promotion is still in progress in. */
export const UNFINISHED_STATES: readonly PromotionState[] = PROMOTION_STATES.filter((s) => !isFinal(s));

/** An event the promotion's state does not accept (a 409 for a caller: the state changed under it). */
export class IllegalTransitionError extends FerryError<"conflict"> {
  readonly from: PromotionState;
  readonly event: PromotionEvent;

  constructor(from: PromotionState, event: PromotionEvent) {
    super(
      "conflict",
      rowOf(from) === undefined
        ? `unknown promotion state ${JSON.stringify(from)}`
        : isFinal(from)
          ? `the promotion is already ${from}; a finished promotion does not change`
          : `a ${from} promotion cannot ${event}`,
      { extra: { state: from, event } },
    );
    this.name = "IllegalTransitionError";
    this.from = from;
    this.event = event;
  }
}

/** The state `event` moves a `from` promotion to; throws {@link IllegalTransitionError} when the table has no such move. */
export function transition(from: PromotionState, event: PromotionEvent): PromotionState {
  const row = rowOf(from);
  const to = row !== undefined && Object.hasOwn(row, event) ? row[event] : undefined;
  if (to === undefined) throw new IllegalTransitionError(from, event);
  return to;
}
