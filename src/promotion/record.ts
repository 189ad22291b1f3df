import type { VerificationReport } from "../verify/report.ts";
import type { GateName, GateResult, GateStatus } from "./gates.ts";
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
}

/** Who asked for a promotion: only from the verified token. */
export interface Requester {
  issuer: string;
  subject: string;
  kind: "pipeline" | "human";
  /** A pipeline's human actor (GitHub `actor`, GitLab `user_login`). */
  actor?: string;
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
}

/** A gate result as stored: the pure core's result without its internal fields. */
export function gateRecord(g: GateResult): GateRecord {
  return {
    name: g.gate,
    status: g.status,
    reason: g.reason,
    message: g.message,
    ...(g.until === undefined ? {} : { until: g.until }),
  };
}
