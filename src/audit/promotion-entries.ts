/**
 * The audit entries of one stored change of a promotion, derived purely from the promotion before
 * and after it (docs/evidence.md, "Promotion decisions"), like src/notifications/events.ts derives
 * notifications. Each entry comes from a transition, never from a state alone, so re-evaluating a
 * waiting promotion that changed nothing records nothing.
 */
import type { PromotionRecord, StepRecord } from "../promotion/record.ts";
import type { AuditActor, AuditInput } from "./types.ts";

/** Issuer config names to their URLs (the actor's `issuer`, as the rest of the log records it). */
export type IssuerUrls = ReadonlyMap<string, string>;

/** The longest comment, justification or reason text kept in an entry's data, in characters. */
export const AUDIT_TEXT_MAX = 2000;

/**
 * What one change leaves to write: an entry, or `sync`: look for the promotion's votes and reviews
 * not yet in the chain when chaining (they are stored in their own tables; see pending.ts).
 */
export type PendingItem = { kind: "entry"; entry: AuditInput } | { kind: "sync" };

/** Text as kept in an entry: cut to {@link AUDIT_TEXT_MAX}. */
export function bounded(text: string): string {
  return text.length > AUDIT_TEXT_MAX ? text.slice(0, AUDIT_TEXT_MAX) : text;
}

/**
 * A person or pipeline recorded by config name (promotion records and votes keep the name) as an
 * audit actor: the issuer's URL when the config still has it, else the name as it was stored.
 */
export function actorByName(
  by: { issuer: string; subject: string; name?: string | undefined },
  issuers: IssuerUrls,
): AuditActor {
  return {
    issuer: issuers.get(by.issuer) ?? by.issuer,
    subject: by.subject,
    ...(by.name === undefined ? {} : { name: by.name }),
  };
}

const VOTING_STATES: ReadonlySet<string> = new Set(["pending", "waiting"]);

function step(p: PromotionRecord | undefined, name: string): StepRecord | undefined {
  return p?.steps.find((s) => s.name === name);
}

/** A step that became `done` in this change. */
function becameDone(after: PromotionRecord, before: PromotionRecord | undefined, name: string) {
  const now = step(after, name);
  return now?.status === "done" && step(before, name)?.status !== "done" ? now : undefined;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Why the promotion is in its state now: its result's reason, or the first waiting gate's. */
function stateReason(p: PromotionRecord): string | undefined {
  if (p.result !== undefined) return p.result.reason;
  if (p.state === "waiting") return p.gates.find((g) => g.status === "waiting")?.reason;
  if (p.state === "running") return "gates_passed";
  return undefined;
}

/**
 * The entries of one change (`before` undefined for a new promotion), in a fixed order: request
 * and break-glass, gate decisions that changed (status or reason; a message that only counts
 * differently is not a decision), the state change, a rejection, the GitOps commit and the
 * verification summary when their steps finish; then `sync` when votes or reviews may have been
 * stored since the previous change (a vote while the promotion could be voted on, a review with the
 * review count).
 */
export function promotionAuditItems(
  after: PromotionRecord,
  before: PromotionRecord | undefined,
  issuers: IssuerUrls,
): PendingItem[] {
  const items: PendingItem[] = [];
  const push = (entry: Omit<AuditInput, "subject">) =>
    items.push({ kind: "entry", entry: { ...entry, subject: after.id } });
  const target = { app: after.app, environment: after.environment, digest: after.digest };
  const requester = actorByName(after.requestedBy, issuers);
  if (before === undefined) {
    push({
      type: "promotion_requested",
      actor: requester,
      outcome: "requested",
      data: {
        ...target,
        from: after.from,
        rollback: after.rollback,
        breakGlass: after.breakGlass !== undefined,
        state: after.state,
        requester: {
          kind: after.requestedBy.kind,
          ...(after.requestedBy.runUrl ? { runUrl: after.requestedBy.runUrl } : {}),
        },
        ...(after.reason === undefined ? {} : { reason: bounded(after.reason) }),
      },
    });
    if (after.breakGlass !== undefined)
      push({
        type: "break_glass",
        actor: requester,
        outcome: "requested",
        data: {
          ...target,
          justification: bounded(after.breakGlass.justification),
          reviewBy: after.breakGlass.reviewBy,
        },
      });
  }
  for (const gate of after.gates) {
    const was = before?.gates.find((g) => g.name === gate.name);
    if (was !== undefined && was.status === gate.status && was.reason === gate.reason) continue;
    push({
      type: "gate_result",
      actor: "ferry",
      outcome: gate.status,
      reason: gate.reason,
      data: {
        gate: gate.name,
        status: gate.status,
        version: after.version,
        ...(gate.message === undefined ? {} : { message: bounded(gate.message) }),
        ...(gate.until === undefined ? {} : { until: gate.until }),
        ...(was === undefined ? {} : { was: { status: was.status, reason: was.reason } }),
      },
    });
  }
  if (before !== undefined && after.state !== before.state) {
    push({
      type: "promotion_state",
      actor: "ferry",
      outcome: after.state,
      reason: stateReason(after),
      data: {
        from: before.state,
        to: after.state,
        version: after.version,
        ...(after.result === undefined ? {} : { message: bounded(after.result.message) }),
      },
    });
    if (after.state === "rejected" && after.result?.by !== undefined)
      push({
        type: "rejection",
        actor: actorByName(after.result.by, issuers),
        outcome: "rejected",
        reason: "rejected",
        data: {
          ...target,
          ...(after.result.comment === undefined ? {} : { comment: bounded(after.result.comment) }),
        },
      });
  }
  const gitops = becameDone(after, before, "gitops");
  const commit = str(gitops?.data?.commit);
  if (gitops !== undefined && commit !== undefined) {
    const d = gitops.data!;
    push({
      type: "gitops_commit",
      actor: "ferry",
      outcome: d.unchanged === true ? "unchanged" : d.pullRequest !== undefined ? "merged" : "pushed",
      data: {
        ...target,
        repo: str(d.repo) ?? null,
        branch: str(d.branch) ?? null,
        commit,
        path: str(d.path) ?? null,
        ...(str(d.pullRequest) === undefined ? {} : { pullRequest: str(d.pullRequest)! }),
        ...(str(d.mergeSha) === undefined ? {} : { mergeSha: str(d.mergeSha)! }),
      },
    });
  }
  const evidence = becameDone(after, before, "evidence");
  const summary = evidence?.data?.summary as Record<string, unknown> | undefined;
  if (summary !== undefined && str(summary.digest) !== undefined)
    push({
      type: "verification_summary",
      actor: "ferry",
      outcome: "attached",
      data: {
        ...target,
        summary: str(summary.digest)!,
        ...(str(summary.predicateType) === undefined ? {} : { predicateType: str(summary.predicateType)! }),
        ...(str(summary.keyId) === undefined ? {} : { keyId: str(summary.keyId)! }),
        targetRepository: after.targetRepository,
      },
    });
  const approvals = after.gates.find((g) => g.name === "approvals");
  const votable = before !== undefined && VOTING_STATES.has(before.state) && approvals?.status !== "skipped";
  const reviewed = (after.review?.count ?? 0) !== (before?.review?.count ?? 0);
  if (votable || reviewed) items.push({ kind: "sync" });
  return items;
}

/** The issuers' URLs by config name, with `ferry` (Ferry-minted tokens) as `server.publicUrl`. */
export function issuerUrlsOf(config: {
  issuers: readonly { name: string; url: string }[];
  server: { publicUrl: string };
}): IssuerUrls {
  const urls = new Map(config.issuers.map((i) => [i.name, i.url]));
  if (!urls.has("ferry")) urls.set("ferry", config.server.publicUrl);
  return urls;
}

/**
 * The `notification_delivery` entry of a delivery's final outcome: `delivered` or `dead`, with the
 * receiver's name (never its URL or secret), the event, the attempts made and the last outcome.
 */
export function deliveryEntry(
  delivery: { id: string; promotionId: string; receiver: string; event: string },
  outcome: { state: "delivered" | "dead"; reason: string; attempt: number; status?: number },
): AuditInput {
  return {
    type: "notification_delivery",
    actor: "ferry",
    subject: delivery.promotionId,
    outcome: outcome.state,
    reason: outcome.reason,
    data: {
      delivery: delivery.id,
      receiver: delivery.receiver,
      event: delivery.event,
      attempt: outcome.attempt,
      ...(outcome.status === undefined ? {} : { status: outcome.status }),
    },
  };
}
