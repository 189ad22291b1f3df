import type { PromotionRecord } from "./record.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** The promotion resource of the HTTP API (times as ISO 8601), from a stored promotion. */
export function promotionResource(p: PromotionRecord): Record<string, unknown> {
  return {
    id: p.id,
    app: p.app,
    digest: p.digest,
    from: p.from,
    to: p.environment,
    state: p.state,
    rollback: p.rollback,
    ...(p.reason === undefined ? {} : { reason: p.reason }),
    requestedBy: p.requestedBy,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
    gates: p.gates.map((g) => ({
      name: g.name,
      status: g.status,
      reason: g.reason,
      ...(g.message === undefined ? {} : { message: g.message }),
      ...(g.until === undefined ? {} : { until: iso(g.until) }),
    })),
    steps: p.steps.map((s) => ({
      name: s.name,
      status: s.status,
      attempts: s.attempts,
      ...(s.startedAt === undefined ? {} : { startedAt: iso(s.startedAt) }),
      ...(s.finishedAt === undefined ? {} : { finishedAt: iso(s.finishedAt) }),
      ...(s.reason === undefined ? {} : { reason: s.reason }),
      ...(s.message === undefined ? {} : { message: s.message }),
    })),
    ...(p.result === undefined ? {} : { result: p.result }),
    ...(p.verification === undefined ? {} : { verification: p.verification }),
  };
}
