/**
 * Approval attestations: each approval that counted for a promotion, and the rejection that ended
 * one, as the predicate of an in-toto statement about the promoted digest. Pure, no I/O, no clock:
 * built from the stored vote and promotion only, so a rerun builds the same bytes
 * (docs/evidence.md, "Approval attestations"; JSON Schema: docs/approval-predicate.schema.json).
 */
import type { ApprovalVote, Decision, VoteStanding } from "../promotion/approvals/tally.ts";
import type { PromotionRecord } from "../promotion/record.ts";
import { summaryPolicyUri } from "../verify/summary.ts";
import type { ResourceDescriptor } from "./vsa.ts";

/** The predicate type of Ferry's approval attestations (a URI under the project's own name). */
export const APPROVAL_PREDICATE_TYPE = "https://ferry.dev/attestations/approval/v1";

/** The `https://ferry.dev/attestations/approval/v1` predicate. */
export interface ApprovalPredicate {
  /** Who recorded the decision: Ferry's `server.publicUrl` (the VSA's `verifier.id`). */
  verifier: { id: string };
  /** The person: their issuer's URL (not its config name), the token's `sub`, their name if it had one. */
  approver: { issuer: string; subject: string; name?: string };
  decision: Decision;
  comment?: string;
  /** When the decision was given (RFC 3339, UTC). */
  time: string;
  /** The approver's groups when they voted (what made them eligible). */
  groups: string[];
  /** What was decided on: the promotion, its app and target environment. */
  promotion: { id: string; uri: string; app: string; environment: string; from: string | null };
  /**
   * The environment's policy the decision was given under: its URI, and the hash approvals are bound
   * to (SHA-256 of the environment's config entry, `GET /v1/policies/{environment}`'s `hashes.environment`).
   */
  policy: ResourceDescriptor;
}

/** What one approval attestation is built from. */
export interface ApprovalInput {
  verifierId: string;
  vote: ApprovalVote;
  promotion: Pick<PromotionRecord, "id" | "app" | "environment" | "from">;
  /** Issuers' URLs by config name (votes keep the name; the statement names the issuer by its URL). */
  issuerUrls: ReadonlyMap<string, string>;
}

/** The predicate of one vote. */
export function approvalPredicate(input: ApprovalInput): ApprovalPredicate {
  const { vote, promotion } = input;
  const verifierId = input.verifierId.replace(/\/+$/, "");
  return {
    verifier: { id: verifierId },
    approver: {
      issuer: input.issuerUrls.get(vote.issuer) ?? vote.issuer,
      subject: vote.subject,
      ...(vote.name === undefined ? {} : { name: vote.name }),
    },
    decision: vote.decision,
    ...(vote.comment === undefined ? {} : { comment: vote.comment }),
    time: new Date(vote.decidedAt).toISOString(),
    groups: [...vote.groups],
    promotion: {
      id: promotion.id,
      uri: `${verifierId}/v1/promotions/${encodeURIComponent(promotion.id)}`,
      app: promotion.app,
      environment: promotion.environment,
      from: promotion.from,
    },
    policy: {
      uri: summaryPolicyUri(verifierId, promotion.environment),
      digest: { sha256: vote.policyHash },
    },
  };
}

/**
 * The votes a promotion's attestations are made of: for a rejected promotion, the reject that
 * ended it; otherwise each approval that counted (one per person, as the gate counted them).
 */
export function attestedVotes(
  promotion: PromotionRecord,
  standings: readonly VoteStanding[],
): ApprovalVote[] {
  if (promotion.state === "rejected") {
    const by = promotion.result?.by;
    const rejects = standings.filter((s) => s.vote.decision === "reject").map((s) => s.vote);
    const ending =
      rejects.find((v) => v.issuer === by?.issuer && v.subject === by?.subject) ?? rejects.at(-1);
    return ending === undefined ? [] : [ending];
  }
  return standings.filter((s) => s.counts && s.vote.decision === "approve").map((s) => s.vote);
}

/** When the gates passed: the first step's start (kept across reruns), else the promotion's last change. */
export function gatesPassedAt(promotion: PromotionRecord): number {
  const starts = promotion.steps.map((s) => s.startedAt).filter((t): t is number => t !== undefined);
  return starts.length === 0 ? promotion.updatedAt : Math.min(...starts);
}
