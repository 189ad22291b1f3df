import { Counter, Gauge, type Registry } from "prom-client";

/** What delivery attempts come to, as counted. */
export type DeliveryOutcome = "delivered" | "failed" | "dead";

/** What the delivery worker reports to Prometheus. */
export interface NotificationMetrics {
  attempt(receiver: string, event: string, outcome: DeliveryOutcome): void;
}

/**
 * Registers `ferry_notification_deliveries_total{receiver,event,outcome}` (one per attempt:
 * `delivered`, `failed` and tried again, `dead` and given up) and `ferry_notification_outbox_pending`
 * (read from the store at scrape time, so every replica reports the same number). Receiver names come
 * from the config and events from a fixed list, never from requests.
 */
export function createNotificationMetrics(
  registry: Registry,
  pending: () => Promise<number>,
): NotificationMetrics {
  const total = new Counter({
    name: "ferry_notification_deliveries_total",
    help: "Notification delivery attempts, by receiver, event and outcome (delivered, failed, dead)",
    labelNames: ["receiver", "event", "outcome"] as const,
    registers: [registry],
  });
  new Gauge({
    name: "ferry_notification_outbox_pending",
    help: "Notifications queued in the outbox and not yet delivered or given up",
    registers: [registry],
    async collect() {
      // A scrape while the store is away (shutting down) reports nothing rather than failing.
      const n = await pending().catch(() => undefined);
      if (n === undefined) this.reset();
      else this.set(n);
    },
  });
  return { attempt: (receiver, event, outcome) => total.inc({ receiver, event, outcome }) };
}

/** Metrics that go nowhere (tests of the worker alone). */
export const noNotificationMetrics: NotificationMetrics = { attempt: () => undefined };
