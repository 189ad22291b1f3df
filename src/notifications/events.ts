import type { NotificationEvent } from "../config/schema/notifications.ts";
import type { GateRecord, PromotionRecord } from "../promotion/record.ts";

export type { NotificationEvent } from "../config/schema/notifications.ts";

/** A promotion as the derivation and the payloads read it (`breakGlass` set on a break-glass one). */
export type NotifiedPromotion = PromotionRecord;

/** The approvals gate's decision, when it has one. */
function approvals(p: PromotionRecord | undefined): GateRecord | undefined {
  return p?.gates.find((g) => g.name === "approvals");
}

const isAwaiting = (g: GateRecord | undefined) =>
  g?.status === "waiting" && g.reason === "awaiting_approvals";
const isApproved = (g: GateRecord | undefined) => g?.status === "passed" && g.reason === "approved";

/**
 * Whether a wait that goes on now needs more people than before: approvals stopped counting
 * (expired, or voided by a change of the environment's policy) or the rules grew stricter. Votes
 * only ever lower `more` otherwise (a reject ends the promotion), so this is news for approvers:
 * those whose approval no longer counts must approve again.
 */
const needsMore = (now: GateRecord | undefined, before: GateRecord | undefined) =>
  now?.needs !== undefined && before?.needs !== undefined && now.needs.more > before.needs.more;

/** The states that end a promotion as `failed` for a receiver (see docs/notifications.md). */
const FAILED_STATES = new Set(["failed", "expired"]);

/**
 * The notification events one stored change of a promotion (`before` → `after`; `before` undefined
 * for a new one) gives, in a fixed order. Pure: each event comes from a transition, never from a
 * state alone, so re-evaluating a waiting promotion (a new version with the same gates, or fewer
 * approvals still needed) tells no one again, while an approvals wait that ends and starts again,
 * or that needs more people than it did (approvals expired or voided by a policy change), is told
 * again.
 * `expired` counts as `failed` (the promotion will not happen); `cancelled` and `superseded` are
 * not told: someone chose them, or a newer promotion was promoted (and told) instead.
 */
export function notificationEvents(
  after: NotifiedPromotion,
  before: NotifiedPromotion | undefined,
): NotificationEvent[] {
  const events: NotificationEvent[] = [];
  if (before === undefined && after.breakGlass !== undefined) events.push("break_glass");
  const gateNow = approvals(after);
  const gateBefore = approvals(before);
  if (isAwaiting(gateNow) && (!isAwaiting(gateBefore) || needsMore(gateNow, gateBefore)))
    events.push("awaiting_approval");
  if (isApproved(gateNow) && !isApproved(gateBefore)) events.push("approved");
  const changed = after.state !== before?.state;
  if (changed && after.state === "rejected") events.push("rejected");
  if (changed && after.state === "promoted") events.push("promoted");
  if (changed && FAILED_STATES.has(after.state) && !FAILED_STATES.has(before?.state ?? ""))
    events.push("failed");
  return events;
}
