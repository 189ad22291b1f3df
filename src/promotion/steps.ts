import type { StepRecord } from "./record.ts";
import type { StepRunners } from "./step-runner.ts";

/**
 * The steps a running promotion performs, in order. Each is idempotent and resumable after a
 * crash; whether a step's failure is retried or final is the step runner's call, not this list's.
 */
export const PROMOTION_STEPS = [
  /** Copy the digest, with its signatures and attestations, into the target repository. */
  "copy",
  /** Update the GitOps repository (a slot: skipped until `apps[].gitops` is configured). */
  "gitops",
  /** Record the digest as current in the target environment. */
  "record",
  /** Sign and attach the verification summary (a slot: skipped until evidence is configured). */
  "evidence",
] as const;
export type PromotionStep = (typeof PROMOTION_STEPS)[number];

/** A step of a plan: to run, or skipped because nothing is configured for it. */
export interface PlannedStep {
  name: PromotionStep;
  status: "pending" | "skipped";
}

/** What is configured for the optional steps of one app and environment. */
export interface StepOptions {
  gitops: boolean;
  evidence: boolean;
}

/** The steps of one promotion, in order: `gitops` and `evidence` skipped unless configured. */
export function planSteps(options: StepOptions): PlannedStep[] {
  return PROMOTION_STEPS.map((name) => ({
    name,
    status:
      (name === "gitops" && !options.gitops) || (name === "evidence" && !options.evidence)
        ? "skipped"
        : "pending",
  }));
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
