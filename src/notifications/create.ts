import type { Registry } from "prom-client";
import type { Clock } from "../common/clock.ts";
import { newRecordId } from "../common/ids.ts";
import type { Logger } from "../common/logger.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { PromotionStore } from "../promotion/store.ts";
import type { Store } from "../store/store.ts";
import { type NotifiedPromotion, notificationEvents } from "./events.ts";
import { createNotificationMetrics, noNotificationMetrics } from "./metrics.ts";
import { NotificationOutbox } from "./outbox.ts";
import { renderBody } from "./payload.ts";
import { compileReceivers, type Receiver } from "./receivers.ts";
import { DeliveryWorker } from "./worker.ts";

/** Deliveries in flight at once, over all receivers (each bounded by its own `timeout`). */
export const MAX_IN_FLIGHT = 8;

/** What {@link createNotifications} wires from. */
export interface NotificationWiring {
  config: Pick<FerryConfig, "notifications" | "promotion"> & { server: { publicUrl: string } };
  store: Store;
  /** The promotion store whose changes are told. */
  promotions: PromotionStore;
  clock: Clock;
  logger: Logger;
  metrics?: Registry;
}

/** The notification graph of one process. */
export interface Notifications {
  outbox: NotificationOutbox;
  worker: DeliveryWorker;
  receivers: ReadonlyMap<string, Receiver>;
}

/**
 * Wires the outbox into the promotion store and builds the delivery worker. With receivers
 * configured, a write hook queues one entry per (event, subscribed receiver) in the transaction of
 * each promotion change (so no event is lost, and none is queued for a change that rolled back),
 * and a change listener wakes the worker once the change has committed. Without receivers, nothing
 * is hooked (promotion writes stay as they were).
 */
export function createNotifications(wiring: NotificationWiring): Notifications {
  const { config, store, promotions, clock } = wiring;
  const logger = wiring.logger.child({ component: "notifications" });
  const receivers = compileReceivers(config.notifications);
  const outbox = new NotificationOutbox(store.db);
  const metrics =
    wiring.metrics === undefined
      ? noNotificationMetrics
      : createNotificationMetrics(wiring.metrics, () => outbox.pendingCount());
  const worker = new DeliveryWorker({
    store,
    outbox,
    receivers,
    clock,
    logger,
    metrics,
    options: {
      pollInterval: config.promotion.pollInterval,
      leaseTtl: config.promotion.leaseTtl,
      maxInFlight: MAX_IN_FLIGHT,
    },
  });
  if (receivers.size > 0) {
    const publicUrl = config.server.publicUrl;
    promotions.onWrite(async (tx, after, before) => {
      const events = notificationEvents(after as NotifiedPromotion, before as NotifiedPromotion | undefined);
      const entries = events.flatMap((event) =>
        [...receivers.values()]
          .filter((r) => r.events.has(event))
          .map((r) => ({
            id: `msg_${newRecordId()}`,
            promotionId: after.id,
            event,
            receiver: r.name,
            format: r.format,
            body: renderBody(r.format, event, after as NotifiedPromotion, publicUrl),
            createdAt: after.updatedAt,
          })),
      );
      await outbox.enqueue(tx, entries);
    });
    promotions.onChange((after, before) => {
      if (notificationEvents(after as NotifiedPromotion, before as NotifiedPromotion | undefined).length > 0)
        worker.wake();
    });
  }
  return { outbox, worker, receivers };
}
