import { Counter, Gauge, type Registry } from "prom-client";

/** What GitOps write-back and drift report to Prometheus. */
export interface GitopsMetrics {
  /** A gitops step wrote (or found it had nothing to write). */
  write(
    mode: "push" | "pull-request",
    outcome: "pushed" | "found" | "unchanged" | "opened" | "reused" | "merged" | "closed" | "timeout",
  ): void;
  /** A push was rejected as non-fast-forward (someone pushed first); it is re-applied and retried. */
  rejected(): void;
  /** A drift check's verdict for an app and environment. */
  inSync(app: string, environment: string, inSync: boolean): void;
}

/** Metrics that go nowhere (tests of the step alone). */
export const noGitopsMetrics: GitopsMetrics = { write() {}, rejected() {}, inSync() {} };

/**
 * Registers `ferry_gitops_writes_total{mode,outcome}`, `ferry_gitops_push_rejections_total` and
 * `ferry_gitops_in_sync{app,environment}` (1/0, set by each drift check). Labels come from the
 * config and fixed lists, never from requests.
 */
export function createGitopsMetrics(registry: Registry): GitopsMetrics {
  const writes = new Counter({
    name: "ferry_gitops_writes_total",
    help: "GitOps step outcomes, by mode and outcome",
    labelNames: ["mode", "outcome"] as const,
    registers: [registry],
  });
  const rejections = new Counter({
    name: "ferry_gitops_push_rejections_total",
    help: "GitOps pushes rejected as non-fast-forward (then re-applied on the new head)",
    registers: [registry],
  });
  const sync = new Gauge({
    name: "ferry_gitops_in_sync",
    help: "1 when the last drift check found Ferry's record, the Git pin and the registry in agreement, else 0",
    labelNames: ["app", "environment"] as const,
    registers: [registry],
  });
  return {
    write: (mode, outcome) => writes.inc({ mode, outcome }),
    rejected: () => rejections.inc(),
    inSync: (app, environment, inSync) => sync.set({ app, environment }, inSync ? 1 : 0),
  };
}
