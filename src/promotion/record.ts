import type { VerificationReport } from "../verify/report.ts";
import type { ApprovalNeeds, GateName, GateResult, GateStatus } from "./gates.ts";
import type { PromotionState } from "./states.ts";
import type { PromotionStep } from "./steps.ts";

/** What a step is doing, as stored and shown. */
/** `waiting`: the promotion runs, and the step waits for something outside (a pull request merged). */
export type StepStatus = "pending" | "running" | "waiting" | "done" | "failed" | "skipped";

/** One step of a promotion, as stored (times in epoch ms). */
export interface StepRecord {
  name: PromotionStep;
  status: StepStatus;
  /** How many times the step was started, crashes and retries included. */
  attempts: number;
  startedAt?: number;
  finishedAt?: number;
  /** Why it failed (or, while it is retried, why the last attempt failed), as a stable code. */
  reason?: string;
  message?: string;
  /** What the step did or waits on (a commit sha, a pull request), kept across its runs. */
  data?: Record<string, unknown>;
}

/** One gate's last decision, as stored. */
export interface GateRecord {
  name: GateName;
  status: GateStatus;
  reason: string;
  message?: string;
  until?: number;
  /** The approvals gate while it waits on votes: how many more people, from which groups. */
  needs?: ApprovalNeeds;
}

/** Who asked for a promotion: only from the verified token. */
export interface Requester {
  issuer: string;
  subject: string;
  kind: "pipeline" | "human";
  /** A pipeline's human actor (GitHub `actor`, GitLab `user_login`). */
  actor?: string;
  /** A pipeline's actor's numeric id (GitHub `actor_id`, GitLab `user_id`), for separation of duties. */
  actorId?: string;
  /** A pipeline's platform (`github`, `gitlab`, …): whose accounts `actor` and `actorId` are. */
  platform?: string;
  /** A person's CI identities from their issuer's `links` claims, for separation of duties. */
  links?: Partial<Record<"github" | "gitlab", string[]>>;
  /** The pipeline run that asked. */
  runUrl?: string;
}

/** The verification reports kept with a promotion. */
export interface PromotionVerification {
  /** The hash of the target environment's compiled `require` policy. */
  policyHash: string;
  /** Verification in the source repository, before the copy. */
  source?: VerificationReport;
  /** Verification in the target repository, after the copy (absent when nothing was copied). */
  target?: VerificationReport;
}

/** Why a promotion ended as it did. */
export interface PromotionResult {
  reason: string;
  message: string;
  /** For a rejected promotion: the approver who rejected it. */
  by?: { issuer: string; subject: string; name?: string };
  /** For a rejected promotion: the approver's comment. */
  comment?: string;
}

/** A promotion as the engine sees it (the store's row, decoded). */
export interface PromotionRecord {
  id: string;
  app: string;
  /** The target environment (`to`). */
  environment: string;
  digest: string;
  /** The environment it is copied from (`after`); null when none (first environment, or a rollback). */
  from: string | null;
  sourceRepository: string;
  targetRepository: string;
  state: PromotionState;
  /** Grows with every stored change; writes are compare-and-swap on it. */
  version: number;
  rollback: boolean;
  reason?: string;
  requestedBy: Requester;
  requestHash: string;
  createdAt: number;
  updatedAt: number;
  /** When the worker should look at it again; null when it is finished. */
  nextCheckAt: number | null;
  gates: GateRecord[];
  steps: StepRecord[];
  result?: PromotionResult;
  verification?: PromotionVerification;
  /** Set when it was asked for as break-glass: order, soak, freeze and approvals are skipped. */
  breakGlass?: BreakGlass;
  /** A break-glass promotion's reviews so far; absent until the first, which closes it. */
  review?: ReviewSummary;
}

/** What a break-glass request stored (times in epoch ms). */
export interface BreakGlass {
  /** Why, as the requester wrote it (not secret: it is logged). */
  justification: string;
  /** When it was asked for. */
  at: number;
  /** `at` + the environment's `breakGlass.reviewWithin`: a review after this is late. */
  reviewBy: number;
}

/** Who reviewed a break-glass promotion first, and how many reviews it has. */
export interface ReviewSummary {
  by: { issuer: string; subject: string; name?: string };
  /** When the first review was given (epoch ms). */
  at: number;
  /** Whether the first review came after `breakGlass.reviewBy`. */
  late: boolean;
  comment: string;
  /** Reviews given (several people may review; the first closes it). */
  count: number;
}

/** A gate result as stored: the pure core's result without its internal fields. */
export function gateRecord(g: GateResult): GateRecord {
  return {
    name: g.gate,
    status: g.status,
    reason: g.reason,
    message: g.message,
    ...(g.until === undefined ? {} : { until: g.until }),
    ...(g.needs === undefined ? {} : { needs: { more: g.needs.more, groups: [...g.needs.groups] } }),
  };
}
