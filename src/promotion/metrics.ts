import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { GateRecord } from "./record.ts";

/** What the promotion engine reports to Prometheus. */
export interface PromotionMetrics {
  /** A promotion ended (`promoted`, `failed`, `cancelled`, `superseded`, `expired`, `rejected`). */
  finished(app: string, environment: string, outcome: string): void;
  /** A step attempt took `seconds` and ended `ok`, `retry` or `failed`. */
  step(step: string, outcome: "ok" | "retry" | "failed", seconds: number): void;
}

/**
 * Registers `ferry_promotions_total{app,environment,outcome}`,
 * `ferry_promotion_step_duration_seconds{step,outcome}` and `ferry_promotions_waiting{gate}` (read
 * from the store at scrape time, so every replica reports the same, shared number). Labels come
 * from the config (apps, environments) and fixed lists, never from requests.
 */
export function createPromotionMetrics(
  registry: Registry,
  waitingGates: () => Promise<string[]>,
): PromotionMetrics {
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
  };
}

/** Metrics that go nowhere (tests of the engine alone). */
export const noPromotionMetrics: PromotionMetrics = { finished: () => undefined, step: () => undefined };
