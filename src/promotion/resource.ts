import type { VoteStanding } from "./approvals/tally.ts";
import type { PromotionRecord } from "./record.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A step's data as shown: all of it but `evidence`, the evidence step's signed envelopes and the
 * promoted manifest (kilobytes each), which `GET /v1/promotions/{id}/evidence` serves.
 */
function shownData(data: Record<string, unknown>): Record<string, unknown> {
  const { evidence: _evidence, ...shown } = data;
  return shown;
}

/** The promotion resource of the HTTP API (times as ISO 8601), from a stored promotion. */
export function promotionResource(
  p: PromotionRecord,
  approvals?: readonly VoteStanding[],
): Record<string, unknown> {
  // A person's link claims are kept for separation of duties, not shown.
  const { links: _links, ...requestedBy } = p.requestedBy;
  return {
    id: p.id,
    app: p.app,
    digest: p.digest,
    from: p.from,
    to: p.environment,
    state: p.state,
    rollback: p.rollback,
    ...(p.reason === undefined ? {} : { reason: p.reason }),
    requestedBy,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
    gates: p.gates.map((g) => ({
      name: g.name,
      status: g.status,
      reason: g.reason,
      ...(g.message === undefined ? {} : { message: g.message }),
      ...(g.until === undefined ? {} : { until: iso(g.until) }),
      ...(g.needs === undefined ? {} : { needs: g.needs }),
    })),
    steps: p.steps.map((s) => ({
      name: s.name,
      status: s.status,
      attempts: s.attempts,
      ...(s.startedAt === undefined ? {} : { startedAt: iso(s.startedAt) }),
      ...(s.finishedAt === undefined ? {} : { finishedAt: iso(s.finishedAt) }),
      ...(s.reason === undefined ? {} : { reason: s.reason }),
      ...(s.message === undefined ? {} : { message: s.message }),
      ...(s.data === undefined ? {} : { data: shownData(s.data) }),
    })),
    ...(p.result === undefined ? {} : { result: p.result }),
    ...(p.verification === undefined ? {} : { verification: p.verification }),
    ...(p.breakGlass === undefined
      ? {}
      : {
          breakGlass: {
            justification: p.breakGlass.justification,
            at: iso(p.breakGlass.at),
            reviewBy: iso(p.breakGlass.reviewBy),
          },
        }),
    ...(p.review === undefined ? {} : { review: { ...p.review, at: iso(p.review.at) } }),
    ...(approvals === undefined ? {} : { approvals: approvals.map(approvalResource) }),
  };
}

/** One vote on the promotion resource: who, what, when, and whether it counts now (if not, why). */
export function approvalResource(s: VoteStanding): Record<string, unknown> {
  const v = s.vote;
  return {
    issuer: v.issuer,
    subject: v.subject,
    ...(v.name === undefined ? {} : { name: v.name }),
    decision: v.decision,
    ...(v.comment === undefined ? {} : { comment: v.comment }),
    at: iso(v.decidedAt),
    counts: s.counts,
    ...(s.whyNot === undefined ? {} : { whyNot: s.whyNot }),
  };
}
