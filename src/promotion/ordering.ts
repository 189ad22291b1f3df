import type { PromotionState } from "./states.ts";

/** What the ordering rules need of each promotion of one app and environment. */
export interface QueuedPromotion {
  id: string;
  /** When it was requested (epoch ms). Ties are broken by `id`, so the order is total. */
  createdAt: number;
  state: PromotionState;
}

/** Oldest first: by request time, then by id. */
export function compareAge(a: QueuedPromotion, b: QueuedPromotion): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const queued = (p: QueuedPromotion) => p.state === "pending" || p.state === "waiting";

/**
 * The promotion that may run its steps now, of all the promotions of one app and environment:
 * none while one is running; otherwise the oldest queued one whose gates all passed (`ready`).
 * A queued promotion still waiting on a gate does not hold back a newer one that is ready.
 */
export function nextToRun(
  promotions: readonly QueuedPromotion[],
  ready: ReadonlySet<string>,
): QueuedPromotion | undefined {
  if (promotions.some((p) => p.state === "running")) return undefined;
  return promotions.filter((p) => queued(p) && ready.has(p.id)).sort(compareAge)[0];
}

/**
 * The promotions that end `superseded` when `promoted` was promoted: every older one of the same
 * app and environment still queued. Promoting one of them later would silently move the
 * environment back to an older digest.
 */
export function supersededBy(
  promotions: readonly QueuedPromotion[],
  promoted: QueuedPromotion,
): QueuedPromotion[] {
  return promotions.filter((p) => p.id !== promoted.id && queued(p) && compareAge(p, promoted) < 0);
}
