import type { HeldLease } from "../store/leases.ts";
import type { PromotionRecord, StepRecord } from "./record.ts";
import { planSteps } from "./steps.ts";

/** What a step runner is given besides the promotion. */
export interface StepContext {
  /** The worker's lease on the promotion's (app, environment); fence writes of your own with it. */
  lease: HeldLease;
  /** Aborts when the lease is lost or the process stops: stop, the next holder resumes the step. */
  signal: AbortSignal;
  /** This attempt's number, 1-based (crashes and retries included). */
  attempt: number;
}

/**
 * What one run of a step came to. `done` ends the step (with what it did, kept on the step record:
 * a commit sha, a pull request URL). `waiting` leaves the promotion running and the step waiting
 * until `recheckAt` (a pull request not merged yet), when the step runs again; `data` is kept
 * across the runs, so the next run sees what this one did. A failure is thrown: a `FerryError`
 * with a non-retryable code (or any error with a `reason` the caller maps) fails the promotion.
 */
export type StepOutcome =
  | { status: "done"; message?: string; data?: Record<string, unknown> }
  | { status: "waiting"; recheckAt: number; reason: string; message: string; data?: Record<string, unknown> };

/**
 * An optional promotion step (`gitops`, `evidence`). It must be idempotent and resumable: after a
 * crash it runs again from the start with the step's stored `data`, and must find what a previous
 * run already did (a pushed commit, an attached summary) instead of doing it twice.
 */
export interface StepRunner {
  /** Whether the step applies to (app, environment); planned `skipped` otherwise. */
  configured(app: string, environment: string): boolean;
  run(promotion: PromotionRecord, step: StepRecord, context: StepContext): Promise<StepOutcome>;
}

/** The optional steps' runners; a step with no runner is always `skipped`. */
export type StepRunners = Partial<Record<"gitops" | "evidence", StepRunner>>;

/** A step failed for good with this reason code (the promotion fails with it). */
export class StepFailure extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StepFailure";
    this.reason = reason;
  }
}

/** The planned steps of a promotion of (app, environment): an optional step runs when its runner applies. */
export function planStepsFor(
  runners: StepRunners | undefined,
  app: string,
  environment: string,
): StepRecord[] {
  return planSteps({
    gitops: runners?.gitops?.configured(app, environment) ?? false,
    evidence: runners?.evidence?.configured(app, environment) ?? false,
  }).map((s) => ({ ...s, attempts: 0 }));
}
