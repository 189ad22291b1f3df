import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { GateRecord } from "./record.ts";

/** What the promotion engine reports to Prometheus. */
export interface PromotionMetrics {
  /** A promotion ended (`promoted`, `failed`, `cancelled`, `superseded`, `expired`, `rejected`). */
  finished(app: string, environment: string, outcome: string): void;
  /** A step attempt took `seconds` and ended `ok`, `retry` or `failed`. */
  step(step: string, outcome: "ok" | "retry" | "failed", seconds: number): void;
  /** A break-glass promotion was asked for. */
  breakGlass(app: string, environment: string): void;
}

/**
 * Registers `ferry_promotions_total{app,environment,outcome}`,
 * `ferry_promotion_step_duration_seconds{step,outcome}` and `ferry_promotions_waiting{gate}` (read
 * from the store at scrape time, so every replica reports the same, shared number),
 * `ferry_break_glass_total{app,environment}` and `ferry_break_glass_unreviewed{overdue}` (from
 * `unreviewed` at scrape time, when given). Labels come from the config (apps, environments) and
 * fixed lists, never from requests.
 */
export function createPromotionMetrics(
  registry: Registry,
  waitingGates: () => Promise<string[]>,
  unreviewed?: () => Promise<{ open: number; overdue: number }>,
): PromotionMetrics {
  const breakGlass = new Counter({
    name: "ferry_break_glass_total",
    help: "Break-glass promotions asked for, by app and environment",
    labelNames: ["app", "environment"] as const,
    registers: [registry],
  });
  if (unreviewed !== undefined)
    new Gauge({
      name: "ferry_break_glass_unreviewed",
      help: "Break-glass promotions not reviewed yet; overdue=true: past their breakGlass.reviewWithin",
      labelNames: ["overdue"] as const,
      registers: [registry],
      async collect() {
        // A scrape while the store is away (shutting down) reports nothing rather than failing.
        const counts = await unreviewed().catch(() => undefined);
        this.reset();
        if (counts === undefined) return;
        this.set({ overdue: "false" }, counts.open - counts.overdue);
        this.set({ overdue: "true" }, counts.overdue);
      },
    });
  const total = new Counter({
    name: "ferry_promotions_total",
    help: "Promotions that ended, by app, environment and outcome",
    labelNames: ["app", "environment", "outcome"] as const,
    registers: [registry],
  });
  const steps = new Histogram({
    name: "ferry_promotion_step_duration_seconds",
    help: "Duration of promotion step attempts in seconds, by step and outcome",
    labelNames: ["step", "outcome"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  new Gauge({
    name: "ferry_promotions_waiting",
    help: "Promotions waiting, by the gate they wait on (one promotion counts once per waiting gate)",
    labelNames: ["gate"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const counts = new Map<string, number>();
      // A scrape while the store is away (shutting down) reports nothing rather than failing.
      const rows = await waitingGates().catch(() => []);
      for (const text of rows) {
        for (const gate of JSON.parse(text) as GateRecord[])
          if (gate.status === "waiting") counts.set(gate.name, (counts.get(gate.name) ?? 0) + 1);
      }
      for (const [gate, n] of counts) this.set({ gate }, n);
    },
  });
  return {
    finished: (app, environment, outcome) => total.inc({ app, environment, outcome }),
    step: (step, outcome, seconds) => steps.observe({ step, outcome }, seconds),
    breakGlass: (app, environment) => breakGlass.inc({ app, environment }),
  };
}

/** Metrics that go nowhere (tests of the engine alone). */
export const noPromotionMetrics: PromotionMetrics = {
  finished: () => undefined,
  step: () => undefined,
  breakGlass: () => undefined,
};
