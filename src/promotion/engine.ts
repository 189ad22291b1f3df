import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import { type HeldLease, LeaseLostError } from "../store/leases.ts";
import type { VerificationReport } from "../verify/report.ts";
import type { ApprovalVote } from "./approvals/tally.ts";
import { decideGates, type GateDecision } from "./decide.ts";
import {
  approvalsGate,
  type EnvironmentRules,
  evaluateGates,
  freezeGate,
  type GateFacts,
  orderGate,
  soakGate,
  sourceGate,
} from "./gates.ts";
import type { PromotionMetrics } from "./metrics.ts";
import { nextToRun, supersededBy } from "./ordering.ts";
import type { PromotionPolicies } from "./policies.ts";
import type { PromotionRegistry, PromotionVerifier } from "./ports.ts";
import { gateRecord, type PromotionRecord, type PromotionResult, type StepRecord } from "./record.ts";
import { classifyStepError, stepBackoff } from "./retry.ts";
import { isFinal, type PromotionEvent, transition } from "./states.ts";
import { planStepsFor, StepFailure, type StepRunners } from "./step-runner.ts";
import type { PromotionChanges, PromotionStore } from "./store.ts";

/** What the engine is built from. */
export interface EngineDeps {
  store: PromotionStore;
  policies: PromotionPolicies;
  registry: PromotionRegistry;
  verifier: PromotionVerifier;
  clock: Clock;
  /** `promotion.stepRetries`: retries of a step after a retryable error. */
  stepRetries: number;
  /** Called after every stored change of a promotion (wakes long-polls in this process). */
  notify: (id: string) => void;
  metrics: PromotionMetrics;
  logger: Logger;
  /** The optional steps' runners (`gitops`, `evidence`); a step without one is skipped. */
  steps?: StepRunners;
  random?: () => number;
  /** The votes of a promotion, for the approvals gate (src/approvals/store.ts); none: no votes. */
  approvals?: { forPromotion(promotionId: string): Promise<readonly ApprovalVote[]> };
}

/** A verification in the target failed: the promotion fails, and stores the report with it. */
class VerificationFailure extends StepFailure {
  changes: PromotionChanges = {};
}

/** The promotion changed under us (cancelled, or another worker): re-read and decide again. */
class Changed extends Error {}

function verificationFailure(report: VerificationReport, where: string): VerificationFailure | undefined {
  if (report.allowed) return undefined;
  const failing = report.checks.find((c) => !c.passed);
  return new VerificationFailure(
    failing?.reason ?? "no_checks",
    `verification in ${where} failed: ${failing ? `${failing.name}: ${failing.message}` : "no check ran"}`,
  );
}

/**
 * Runs the promotions of one app and environment while the worker holds that pair's lease: decides
 * the gates of each queued promotion (oldest first), starts the oldest ready one, and runs its steps
 * to `promoted` or `failed`. Every write is a compare-and-swap fenced by the lease, so a worker that
 * lost its lease (a stall, a partition) changes nothing; whoever takes the lease over resumes from
 * the stored state: a `running` promotion continues at its first step not `done`.
 */
export class PromotionEngine {
  readonly #deps: EngineDeps;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
  }

  /** Works on (app, environment) until nothing is due; stops when `signal` aborts (lease lost). */
  async process(app: string, environment: string, lease: HeldLease, signal: AbortSignal): Promise<void> {
    // Bounded: each round either finishes a promotion, starts one or finds nothing due.
    for (let round = 0; round < 1000; round++) {
      signal.throwIfAborted();
      const queue = await this.#deps.store.queue(app, environment);
      try {
        const running = queue.find((p) => p.state === "running");
        if (running !== undefined) {
          // A step that waits (a pull request not merged yet) is looked at again when due; until
          // then nothing else of this pair may start.
          if (running.nextCheckAt !== null && running.nextCheckAt > this.#deps.clock.now()) return;
          if (!(await this.#runSteps(running, lease, signal))) return;
          continue;
        }
        if (!(await this.#evaluateQueue(queue, lease, signal))) return;
      } catch (err) {
        if (err instanceof Changed) continue;
        throw err;
      }
    }
  }

  /** Decides every due queued promotion, oldest first; true when one started (or changed under us). */
  async #evaluateQueue(queue: PromotionRecord[], lease: HeldLease, signal: AbortSignal): Promise<boolean> {
    const now = this.#deps.clock.now();
    for (const p of queue) {
      if (p.state === "waiting" && p.nextCheckAt !== null && p.nextCheckAt > now) continue;
      const decided = await this.#decide(p, now, signal);
      if (decided === undefined) {
        // A registry could not be asked: look again after a pause, not on every pass; and a
        // registry that stays away does not keep the promotion past promotion.maxWait.
        const expired = now >= p.createdAt + this.#deps.policies.maxWait;
        const updated = await this.#save(
          p,
          expired
            ? {
                state: transition(p.state, "expire"),
                nextCheckAt: null,
                result: {
                  reason: "expired",
                  message: "its gates could not be decided within promotion.maxWait",
                },
              }
            : { nextCheckAt: now + stepBackoff(3, this.#deps.random) },
          lease,
        );
        if (expired) this.#deps.metrics.finished(p.app, p.environment, updated.state);
        continue;
      }
      // The oldest ready promotion runs (none is running: process() ran that one first).
      if (decided.decision.event === "start" && nextToRun(queue, new Set([p.id]))?.id !== p.id) continue;
      await this.#apply(p, decided.decision, decided.verification, now, lease);
      if (decided.decision.event === "start") return true;
    }
    return false;
  }

  /** The gates' decision for one promotion; undefined when a registry could not be asked (retried later). */
  async #decide(
    p: PromotionRecord,
    now: number,
    signal: AbortSignal,
  ): Promise<{ decision: GateDecision; verification?: VerificationReport } | undefined> {
    const env = this.#deps.policies.environments.get(p.environment);
    const clock = { now, createdAt: p.createdAt, maxWait: this.#deps.policies.maxWait };
    if (env === undefined) {
      const failed = {
        gate: "source" as const,
        status: "failed" as const,
        reason: "environment_removed" as never,
        message: `environment ${p.environment} is no longer configured`,
      };
      return { decision: { event: "fail", gates: [failed], failed } };
    }
    try {
      const exists = await this.#deps.registry.exists(p.sourceRepository, p.digest, signal);
      const upstream =
        env.after === undefined
          ? undefined
          : await this.#deps.store.upstreamEntry(p.app, env.after, p.digest);
      const facts: GateFacts = {
        now,
        digest: p.digest,
        rollback: p.rollback,
        source: { repository: p.sourceRepository, exists },
        upstream,
        breakGlass: p.breakGlass !== undefined,
        approvals: await this.#approvalFacts(p),
      };
      // Verification reads and checks signatures: run it only once every other gate lets the
      // promotion start.
      const cheap = cheapGates(env, facts);
      const first = decideGates(cheap, clock);
      if (first.event !== "start") return { decision: first };
      const verification = await this.#deps.verifier.verify(
        `${p.sourceRepository}@${p.digest}`,
        p.environment,
        signal,
      );
      return { decision: decideGates(evaluateGates(env, { ...facts, verification }), clock), verification };
    } catch (err) {
      if (signal.aborted) throw err;
      const cls = classifyStepError(err);
      if (cls.retryable) {
        this.#deps.logger.warn(
          { err, promotion: p.id },
          "promotion gates could not be decided; retrying later",
        );
        return undefined;
      }
      const failed = {
        gate: "source" as const,
        status: "failed" as const,
        reason: cls.reason as never,
        message: err instanceof Error ? err.message : String(err),
      };
      return { decision: { event: "fail", gates: [failed], failed } };
    }
  }

  /** The approvals gate's facts: the environment's rules and the promotion's votes, read now. */
  async #approvalFacts(p: PromotionRecord): Promise<GateFacts["approvals"]> {
    const rules = this.#deps.policies.approvals.get(p.environment);
    if (rules === undefined) return undefined;
    const votes = (await this.#deps.approvals?.forPromotion(p.id)) ?? [];
    return { rules, app: p.app, votes };
  }

  async #apply(
    p: PromotionRecord,
    decision: GateDecision,
    verification: VerificationReport | undefined,
    now: number,
    lease: HeldLease,
  ): Promise<void> {
    const state = transition(p.state, decision.event);
    const gates = decision.gates.map(gateRecord);
    const changes: PromotionChanges = { state, gates };
    switch (decision.event) {
      case "fail":
        changes.nextCheckAt = null;
        changes.result = {
          reason: decision.failed.reason,
          message: `gate ${decision.failed.gate} failed: ${decision.failed.message}`,
        };
        break;
      case "expire":
        changes.nextCheckAt = null;
        changes.result = {
          reason: "expired",
          message: `waited longer than promotion.maxWait (${this.#deps.policies.maxWait} ms) for its gates`,
        };
        break;
      case "wait":
        changes.nextCheckAt = decision.recheckAt;
        // Nothing new to say: leave the row (and its version, which long-polls watch) alone.
        if (
          p.state === "waiting" &&
          p.nextCheckAt === decision.recheckAt &&
          JSON.stringify(p.gates) === JSON.stringify(gates)
        )
          return;
        break;
      case "start":
        changes.nextCheckAt = now;
        changes.steps = planStepsFor(this.#deps.steps, p.app, p.environment);
        changes.verification = {
          policyHash: this.#deps.verifier.policyHash(p.environment),
          ...(verification === undefined ? {} : { source: verification }),
        };
        break;
    }
    const updated = await this.#save(p, changes, lease);
    if (isFinal(updated.state)) this.#deps.metrics.finished(p.app, p.environment, updated.state);
    this.#deps.logger.info(
      {
        promotion: p.id,
        app: p.app,
        environment: p.environment,
        state: updated.state,
        event: decision.event,
      },
      "promotion gates decided",
    );
  }

  /**
   * Runs the steps of a running promotion from its first step not done; false when a step waits
   * (the promotion is looked at again at its `nextCheckAt`).
   */
  async #runSteps(start: PromotionRecord, lease: HeldLease, signal: AbortSignal): Promise<boolean> {
    let current = start;
    for (let i = 0; i < current.steps.length; i++) {
      const step = current.steps[i]!;
      if (step.status === "done" || step.status === "skipped") continue;
      const next = await this.#runStep(current, i, lease, signal);
      if (next === undefined || next.state !== "running") return true;
      if (next.steps[i]?.status === "waiting") return false;
      current = next;
    }
    return true;
  }

  async #runStep(
    start: PromotionRecord,
    index: number,
    lease: HeldLease,
    signal: AbortSignal,
  ): Promise<PromotionRecord | undefined> {
    const { clock, metrics } = this.#deps;
    let current = start;
    for (;;) {
      signal.throwIfAborted();
      const before = current.steps[index]!;
      // Looking again at a waiting step is not a new attempt (only starts after a failure or a
      // crash count), and is not stored as one: a pull request polled every minute would otherwise
      // write the promotion twice a minute and wake every long-poll on it.
      const waiting = before.status === "waiting";
      const attempts = waiting ? before.attempts : before.attempts + 1;
      if (!waiting)
        current = await this.#save(
          current,
          {
            steps: withStep(current.steps, index, {
              status: "running",
              attempts,
              startedAt: before.startedAt ?? clock.now(),
            }),
          },
          lease,
        );
      const started = clock.now();
      try {
        const done = await this.#perform(current, index, lease, signal);
        metrics.step(before.name, "ok", (clock.now() - started) / 1000);
        return done;
      } catch (err) {
        if (err instanceof Changed || signal.aborted) throw err;
        const failure =
          err instanceof StepFailure ? { retryable: false, reason: err.reason } : classifyStepError(err);
        const message = err instanceof Error ? err.message : String(err);
        const final = !failure.retryable || attempts > this.#deps.stepRetries;
        metrics.step(before.name, final ? "failed" : "retry", (clock.now() - started) / 1000);
        this.#deps.logger.warn(
          { err, promotion: current.id, step: before.name, attempts, final },
          final ? "promotion step failed" : "promotion step failed; retrying",
        );
        if (final) {
          const failed = await this.#save(
            current,
            {
              ...(err instanceof VerificationFailure ? err.changes : {}),
              state: transition(current.state, "fail"),
              nextCheckAt: null,
              steps: withStep(current.steps, index, {
                status: "failed",
                finishedAt: clock.now(),
                reason: failure.reason,
                message,
              }),
              result: {
                reason: failure.reason,
                message: `step ${before.name} failed${failure.retryable ? ` after ${attempts} attempts` : ""}: ${message}`,
              },
            },
            lease,
          );
          metrics.finished(current.app, current.environment, failed.state);
          return undefined;
        }
        current = await this.#save(
          current,
          { steps: withStep(current.steps, index, { status: "pending", reason: failure.reason, message }) },
          lease,
        );
        await clock.sleep(stepBackoff(attempts, this.#deps.random), signal);
      }
    }
  }

  /** Does step `index` of a running promotion; returns the promotion with the step done. */
  async #perform(
    p: PromotionRecord,
    index: number,
    lease: HeldLease,
    signal: AbortSignal,
  ): Promise<PromotionRecord | undefined> {
    const step = p.steps[index]!;
    const now = () => this.#deps.clock.now();
    const done = (extra: Partial<StepRecord> = {}) =>
      withStep(p.steps, index, {
        status: "done",
        finishedAt: now(),
        ...extra,
        reason: undefined,
        message: extra.message,
      });
    switch (step.name) {
      case "copy": {
        if (p.sourceRepository === p.targetRepository)
          return this.#save(
            p,
            { steps: done({ message: "source and target are the same repository: nothing to copy" }) },
            lease,
          );
        const copied = await this.#deps.registry.copy(
          p.sourceRepository,
          p.targetRepository,
          p.digest,
          signal,
        );
        // The copy must have carried the signatures and attestations: verify again, in the target.
        // What the copy put there is not read again; the target's tags and referrers are.
        const target = await this.#deps.verifier.verify(
          `${p.targetRepository}@${p.digest}`,
          p.environment,
          signal,
          copied && { ...copied, source: p.sourceRepository },
        );
        const verification = {
          policyHash: this.#deps.verifier.policyHash(p.environment),
          ...p.verification,
          target,
        };
        const failure = verificationFailure(target, p.targetRepository);
        if (failure !== undefined) {
          failure.changes = { verification };
          throw failure;
        }
        return this.#save(
          p,
          { steps: done({ message: `copied to ${p.targetRepository}` }), verification },
          lease,
        );
      }
      case "record": {
        const queue = await this.#deps.store.queue(p.app, p.environment);
        const superseded = supersededBy(queue, p).map((s) => s.id);
        const result: PromotionResult = {
          reason: "promoted",
          message: `${p.digest} is current in ${p.environment}`,
        };
        const recorded = await this.#deps.store.record(
          p,
          { steps: done(), result, state: transition(p.state, "succeed") },
          superseded,
          now(),
          lease,
        );
        if (recorded === undefined) await this.#changed(p, lease);
        this.#deps.metrics.finished(p.app, p.environment, "promoted");
        for (const id of superseded) {
          this.#deps.metrics.finished(p.app, p.environment, "superseded");
          this.#deps.notify(id);
        }
        this.#deps.notify(p.id);
        this.#deps.logger.info(
          { promotion: p.id, app: p.app, environment: p.environment, digest: p.digest },
          "promoted",
        );
        return recorded;
      }
      default: {
        const runner = this.#deps.steps?.[step.name];
        if (runner === undefined) return this.#save(p, { steps: done({ message: "not configured" }) }, lease);
        const outcome = await runner.run(p, step, { lease, signal, attempt: step.attempts });
        if (outcome.status === "done")
          return this.#save(
            p,
            {
              steps: done({
                ...(outcome.message === undefined ? {} : { message: outcome.message }),
                ...(outcome.data === undefined ? {} : { data: outcome.data }),
              }),
            },
            lease,
          );
        const steps = withStep(p.steps, index, {
          status: "waiting",
          reason: outcome.reason,
          message: outcome.message,
          ...(outcome.data === undefined ? {} : { data: outcome.data }),
        });
        // Still waiting on the same thing: only the next look moves, and nobody needs waking.
        const same = JSON.stringify(steps) === JSON.stringify(p.steps);
        return this.#save(p, { nextCheckAt: outcome.recheckAt, ...(same ? {} : { steps }) }, lease, {
          quiet: same,
        });
      }
    }
  }

  /** A fenced compare-and-swap; throws when the promotion changed under us or the lease is gone. */
  async #save(
    p: PromotionRecord,
    changes: PromotionChanges,
    lease: HeldLease,
    options: { quiet?: boolean } = {},
  ): Promise<PromotionRecord> {
    const updated = await this.#deps.store.update(p, changes, this.#deps.clock.now(), lease);
    if (updated === undefined) return this.#changed(p, lease);
    if (options.quiet !== true) this.#deps.notify(p.id);
    return updated;
  }

  async #changed(p: PromotionRecord, lease: HeldLease): Promise<never> {
    const now = await this.#deps.store.get(p.id);
    // Same version: the write was refused by the fence, not by a newer change.
    if (now !== undefined && now.version === p.version)
      throw new LeaseLostError(lease.name, "a fenced write was refused");
    throw new Changed(`promotion ${p.id} changed while it was worked on`);
  }
}

/** Every gate except verification, in their report order. */
function cheapGates(env: EnvironmentRules, facts: GateFacts) {
  return [
    sourceGate(facts),
    orderGate(env, facts),
    soakGate(env, facts),
    freezeGate(env, facts),
    approvalsGate(env, facts),
  ];
}

function withStep(steps: StepRecord[], index: number, change: Partial<StepRecord>): StepRecord[] {
  return steps.map((s, i) => {
    if (i !== index) return s;
    const merged: StepRecord = { ...s, ...change };
    for (const key of Object.keys(merged) as (keyof StepRecord)[])
      if (merged[key] === undefined) delete merged[key];
    return merged;
  });
}

export type { PromotionEvent };
