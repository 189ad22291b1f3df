import type { Registry } from "prom-client";
import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { CompiledPolicy } from "../identity/policy.ts";
import type { Store } from "../store/store.ts";
import { compileBreakGlass } from "./approvals/break-glass.ts";
import { BreakGlassReviews, reviewerEligibility } from "./approvals/reviews.ts";
import { ApprovalService } from "./approvals/service.ts";
import { ApprovalStore } from "./approvals/store.ts";
import { PromotionEngine } from "./engine.ts";
import { createPromotionMetrics, noPromotionMetrics } from "./metrics.ts";
import { PromotionNotifier } from "./notifier.ts";
import { compilePromotionPolicies } from "./policies.ts";
import type { PromotionRegistry, PromotionVerifier } from "./ports.ts";
import { compileReadAccess, type ReadAccessConfig } from "./read-access.ts";
import { PromotionService } from "./service.ts";
import type { StepRunners } from "./step-runner.ts";
import { PromotionStore } from "./store.ts";
import { PromotionWorker } from "./worker.ts";

/** What {@link createPromotion} wires the promotion graph from. */
export interface PromotionWiring {
  config: Pick<FerryConfig, "apps" | "environments" | "promotion"> &
    Partial<Pick<FerryConfig, "issuers">> &
    ReadAccessConfig;
  /** The apps' compiled `pipelines` (from `compileTrustPolicies`), reused. */
  appPipelines: ReadonlyMap<string, CompiledPolicy>;
  store: Store;
  registry: PromotionRegistry;
  verifier: PromotionVerifier;
  clock: Clock;
  logger: Logger;
  /** The Prometheus registry; none: no metrics (tests of the engine alone). */
  metrics?: Registry;
  /** The optional steps' runners (`gitops`, `evidence`). */
  steps?: StepRunners;
}

/** The promotion graph of one process. */
export interface Promotion {
  service: PromotionService;
  worker: PromotionWorker;
  engine: PromotionEngine;
  store: PromotionStore;
  /** Votes on promotions, the approvers' inbox (src/approvals/). */
  approvals: ApprovalService;
  /** Stops the worker (in-flight pairs finish their current write and release their leases) and long-polls. */
  close(): Promise<void>;
}

/** Wires store, engine, worker and service from the config: policies compiled once, here. */
export function createPromotion(wiring: PromotionWiring): Promotion {
  const { config, store, clock, logger } = wiring;
  const policies = compilePromotionPolicies(config, wiring.appPipelines);
  const promotions = new PromotionStore(store);
  const notifier = new PromotionNotifier();
  const votes = new ApprovalStore(store);
  const metrics =
    wiring.metrics === undefined
      ? noPromotionMetrics
      : createPromotionMetrics(
          wiring.metrics,
          () => promotions.waitingGates(),
          () => promotions.unreviewedBreakGlass(clock.now()),
        );
  const engine = new PromotionEngine({
    store: promotions,
    policies,
    registry: wiring.registry,
    verifier: wiring.verifier,
    clock,
    stepRetries: config.promotion.stepRetries,
    notify: (id) => notifier.changed(id),
    metrics,
    logger: logger.child({ component: "promotion" }),
    ...(wiring.steps === undefined ? {} : { steps: wiring.steps }),
    approvals: votes,
  });
  const worker = new PromotionWorker({
    store,
    promotions,
    engine,
    clock,
    logger,
    options: {
      pollInterval: config.promotion.pollInterval,
      leaseTtl: config.promotion.leaseTtl,
      concurrency: config.promotion.concurrency,
    },
  });
  const service = new PromotionService({
    config,
    policies,
    access: compileReadAccess(config, wiring.appPipelines),
    store: promotions,
    registry: wiring.registry,
    notifier,
    clock,
    metrics,
    wake: () => worker.wake(),
    ...(wiring.steps === undefined ? {} : { steps: wiring.steps }),
    breakGlass: compileBreakGlass(config.environments),
    reviews: new BreakGlassReviews({
      store: promotions,
      database: store,
      clock,
      eligibility: reviewerEligibility(policies.approvals),
      logger: logger.child({ component: "break-glass" }),
    }),
    logger: logger.child({ component: "break-glass" }),
  });
  const approvals = new ApprovalService({
    promotions,
    votes,
    policies,
    read: (principal, id) => service.get(principal, id),
    clock,
    wake: () => worker.wake(),
    notify: (id) => notifier.changed(id),
    finished: (app, environment, state) => metrics.finished(app, environment, state),
    logger: logger.child({ component: "approvals" }),
  });
  return {
    service,
    worker,
    engine,
    store: promotions,
    approvals,
    async close() {
      service.close();
      await worker.stop();
    },
  };
}
