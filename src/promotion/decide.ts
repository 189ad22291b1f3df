import type { GateResult } from "./gates.ts";
import type { PromotionEvent } from "./states.ts";

/** What the gates' results mean for the promotion: the event to apply, and why. */
export type GateDecision =
  | { event: Extract<PromotionEvent, "start">; gates: GateResult[] }
  | { event: Extract<PromotionEvent, "fail">; gates: GateResult[]; failed: GateResult }
  | { event: Extract<PromotionEvent, "expire">; gates: GateResult[]; deadline: number }
  | {
      event: Extract<PromotionEvent, "wait">;
      gates: GateResult[];
      /** When every waiting gate expects to pass; undefined when one of them does not know. */
      until: number | undefined;
      /** When to evaluate again: `until`, or the expiry deadline if that comes first. */
      recheckAt: number;
    };

/** The timing a decision needs besides the gates. */
export interface WaitClock {
  now: number;
  /** When the promotion was requested (epoch ms); its wait is counted from then. */
  createdAt: number;
  /** `promotion.maxWait` in milliseconds. */
  maxWait: number;
}

/**
 * Decides from the gates: any failed gate fails the promotion (the first one is the reason); any
 * waiting gate makes it wait, until it has waited `maxWait` since it was requested, when it
 * expires; otherwise (every gate passed or skipped) its steps start.
 */
export function decideGates(gates: GateResult[], clock: WaitClock): GateDecision {
  const failed = gates.find((g) => g.status === "failed");
  if (failed !== undefined) return { event: "fail", gates, failed };
  const waiting = gates.filter((g) => g.status === "waiting");
  if (waiting.length === 0) return { event: "start", gates };
  const deadline = clock.createdAt + clock.maxWait;
  if (clock.now >= deadline) return { event: "expire", gates, deadline };
  const until = waiting.every((g) => g.until !== undefined)
    ? Math.max(...waiting.map((g) => g.until!))
    : undefined;
  return { event: "wait", gates, until, recheckAt: Math.min(until ?? deadline, deadline) };
}
