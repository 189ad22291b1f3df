/**
 * The steps a running promotion performs, in order. Each is idempotent and resumable after a
 * crash; whether a step's failure is retried or final is the step runner's call, not this list's.
 */
export const PROMOTION_STEPS = [
  /** Copy the digest, with its signatures and attestations, into the target repository. */
  "copy",
  /** Update the GitOps repository (a slot: skipped until `apps[].gitops` is configured). */
  "gitops",
  /**
   * Sign and attach the verification summary (skipped where no runner applies). Before `record`:
   * `record` ends the promotion (`promoted`), and a promotion recorded without its summary would
   * break "every promotion yields a signed summary"; a summary that cannot be attached fails it first.
   */
  "evidence",
  /** Record the digest as current in the target environment. */
  "record",
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
