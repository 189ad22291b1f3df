import { backoffDelay } from "../common/backoff.ts";
import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import { PollLoop } from "../common/poll-loop.ts";
import { type HeldLease, LeaseBusyError, LeaseLostError } from "../store/leases.ts";
import type { Store } from "../store/store.ts";
import { type AttemptResult, attemptDelivery, standardHeaders } from "./deliver.ts";
import type { NotificationMetrics } from "./metrics.ts";
import type { NotificationOutbox, OutboxEntry, OutboxSettlement } from "./outbox.ts";
import type { Receiver } from "./receivers.ts";

/** How the delivery worker runs. */
export interface DeliveryWorkerOptions {
  /** Look for due deliveries this often even when not woken, ms. */
  pollInterval: number;
  /** The outbox lease, ms; renewed every third of it. */
  leaseTtl: number;
  /** Deliveries in flight at once, over all receivers. */
  maxInFlight: number;
}

/** What the delivery worker is built from. */
export interface DeliveryWorkerDeps {
  store: Store;
  outbox: NotificationOutbox;
  receivers: ReadonlyMap<string, Receiver>;
  clock: Clock;
  logger: Logger;
  metrics: NotificationMetrics;
  options: DeliveryWorkerOptions;
}

/**
 * Told of each delivery's final outcome once it is recorded: `delivered` (after a 2xx) or `dead`
 * (given up), never of a retry. Must not throw or block (the audit log queues its entry).
 */
export type DeliveryOutcomeListener = (
  entry: OutboxEntry,
  outcome: { state: "delivered" | "dead"; reason: string; attempt: number; status?: number },
) => void;

/** The one lease under which deliveries are made, deployment-wide. */
export const OUTBOX_LEASE = "notifications:outbox";
const BATCH = 100;

/**
 * The delivery worker inside `ferry serve`. Under a fenced lease on the outbox (one deliverer in
 * the whole deployment at a time; another replica takes over when it lapses) it sends due entries,
 * at most `maxInFlight` at once, and records each outcome with a write fenced by that lease. An
 * entry becomes `delivered` only after a 2xx (at least once: a crash between the 2xx and that write
 * sends it again, with the same `webhook-id`); a failure is tried again after a jittered exponential
 * backoff, until the receiver's `maxAttempts` or `maxAge`, then it is `dead`. Wakes on new entries
 * ({@link DeliveryWorker.wake}), at the next retry, and every `pollInterval`.
 */
export class DeliveryWorker {
  readonly #deps: DeliveryWorkerDeps;
  readonly #loop: PollLoop;
  readonly #outcomes: DeliveryOutcomeListener[] = [];

  constructor(deps: DeliveryWorkerDeps) {
    this.#deps = deps;
    this.#loop = new PollLoop({
      clock: deps.clock,
      pollInterval: deps.options.pollInterval,
      tick: () => this.tick(),
      onError: (err) => deps.logger.warn({ err }, "notification worker: looking for deliveries failed"),
    });
  }

  /** Adds a listener for final delivery outcomes (the audit log's `notification_delivery`). */
  onOutcome(listener: DeliveryOutcomeListener): void {
    this.#outcomes.push(listener);
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop.start();
  }

  /** Wakes the loop now (new entries were committed). */
  wake(): void {
    this.#loop.wake();
  }

  /** Stops: attempts in flight are abandoned unrecorded (they are made again after a restart). */
  async stop(): Promise<void> {
    await this.#loop.stop();
  }

  /** One pass: delivers every entry due now under the outbox lease; returns when the next is due. */
  async tick(): Promise<number | undefined> {
    const { store, outbox, options } = this.#deps;
    try {
      await store.withLease(OUTBOX_LEASE, { ttl: options.leaseTtl, wait: 0 }, (lease, signal) =>
        this.#drain(lease, AbortSignal.any([signal, this.#loop.stopping])),
      );
    } catch (err) {
      // Another replica delivers; or the lease was lost mid-way and the rest waits for the next pass.
      if (!(err instanceof LeaseBusyError) && !this.#loop.stopping.aborted) {
        const lost = err instanceof LeaseLostError;
        this.#deps.logger.warn(
          { err },
          lost ? "notification lease lost" : "notification delivery pass failed",
        );
      }
    }
    return outbox.nextDue();
  }

  async #drain(lease: HeldLease, signal: AbortSignal): Promise<void> {
    const { outbox, clock, options } = this.#deps;
    while (!signal.aborted) {
      const due = await outbox.due(clock.now(), BATCH);
      if (due.length === 0) return;
      let next = 0;
      const lanes = Array.from({ length: Math.min(options.maxInFlight, due.length) }, async () => {
        while (!signal.aborted && next < due.length) await this.#deliver(due[next++]!, lease, signal);
      });
      await Promise.all(lanes);
      if (due.length < BATCH) return;
    }
  }

  async #deliver(entry: OutboxEntry, lease: HeldLease, signal: AbortSignal): Promise<void> {
    const { outbox, receivers, clock } = this.#deps;
    const receiver = receivers.get(entry.receiver);
    const attempt = entry.attempts + 1;
    if (receiver === undefined || receiver.format !== entry.format) {
      // The config no longer has this receiver as it was: its URL may not be sent anything now.
      const outcome = receiver === undefined ? "receiver_removed" : "receiver_changed";
      const now = clock.now();
      if (await outbox.settle(entry, dead(entry.attempts, now, outcome), lease))
        this.#report(entry, "dead", outcome, entry.attempts);
      return;
    }
    const at = clock.now();
    const headers =
      receiver.webhook === undefined
        ? {}
        : standardHeaders(receiver.webhook, entry.id, new Date(at), entry.body);
    let result: AttemptResult;
    try {
      result = await attemptDelivery(
        { url: receiver.url, body: entry.body, headers, timeoutMs: receiver.timeoutMs },
        signal,
      );
    } catch {
      return; // stopped or lost the lease: this attempt is not recorded and happens again later
    }
    const now = clock.now();
    if (result.kind === "delivered") {
      const change = {
        state: "delivered",
        attempts: attempt,
        nextAttemptAt: now,
        lastOutcome: `http_${result.status}`,
        finishedAt: now,
      } as const;
      if (await outbox.settle(entry, change, lease))
        this.#report(entry, "delivered", change.lastOutcome, attempt, result.status);
      return;
    }
    const deadline = entry.createdAt + receiver.maxAgeMs;
    if (result.kind === "refused" || attempt >= receiver.maxAttempts || now >= deadline) {
      if (await outbox.settle(entry, dead(attempt, now, result.outcome), lease))
        this.#report(entry, "dead", result.outcome, attempt, result.status);
      return;
    }
    const delay = backoffDelay(attempt, receiver.backoff, result.retryAfter);
    // The last retry happens at the deadline rather than never.
    const change: OutboxSettlement = {
      state: "pending",
      attempts: attempt,
      nextAttemptAt: Math.min(now + Math.max(delay, 1), deadline),
      lastOutcome: result.outcome,
    };
    if (await outbox.settle(entry, change, lease))
      this.#report(entry, "failed", result.outcome, attempt, result.status, change.nextAttemptAt - now);
  }

  /** Logs and counts one attempt: receiver name, event, status, attempt; never the URL, secret or body. */
  #report(
    entry: OutboxEntry,
    outcome: "delivered" | "failed" | "dead",
    reason: string,
    attempt: number,
    status?: number,
    retryInMs?: number,
  ): void {
    const { logger, metrics } = this.#deps;
    metrics.attempt(entry.receiver, entry.event, outcome);
    if (outcome !== "failed")
      for (const listener of this.#outcomes)
        listener(entry, { state: outcome, reason, attempt, ...(status === undefined ? {} : { status }) });
    const fields = {
      receiver: entry.receiver,
      event: entry.event,
      promotion: entry.promotionId,
      delivery: entry.id,
      attempt,
      outcome: reason,
      ...(status === undefined ? {} : { status }),
      ...(retryInMs === undefined ? {} : { retryInMs }),
    };
    if (outcome === "delivered") logger.info(fields, "notification delivered");
    else if (outcome === "failed")
      logger.warn(fields, "notification delivery failed; it will be tried again");
    else logger.error(fields, "notification delivery given up");
  }
}

function dead(attempts: number, now: number, outcome: string): OutboxSettlement {
  return { state: "dead", attempts, nextAttemptAt: now, lastOutcome: outcome, finishedAt: now };
}
