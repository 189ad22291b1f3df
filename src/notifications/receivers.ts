import { Webhook } from "standardwebhooks";
import type { RetryPolicy } from "../common/backoff.ts";
import {
  type NotificationEvent,
  type NotificationReceiverConfig,
  receiverName,
} from "../config/schema/notifications.ts";

/** A receiver as the outbox and the worker use it, compiled once from `notifications[]`. */
export interface Receiver {
  /** The stable name queued entries refer to (the config's `name`, else the URL's host). */
  name: string;
  /** The allow-listed URL: the only one this receiver is ever sent to. */
  url: string;
  format: "standard" | "slack";
  events: ReadonlySet<NotificationEvent>;
  /** The signer of a `standard` receiver (holds the secret; never logged). */
  webhook?: Webhook;
  timeoutMs: number;
  maxAttempts: number;
  maxAgeMs: number;
  backoff: RetryPolicy;
}

/** Compiles the receivers by name; the config has already refused bad URLs and secrets. */
export function compileReceivers(configs: readonly NotificationReceiverConfig[]): Map<string, Receiver> {
  const receivers = new Map<string, Receiver>();
  for (const r of configs) {
    const name = receiverName(r);
    receivers.set(name, {
      name,
      url: r.url,
      format: r.format,
      events: new Set(r.events),
      ...(r.format === "standard" && r.secret !== undefined ? { webhook: new Webhook(r.secret) } : {}),
      timeoutMs: r.timeout,
      maxAttempts: r.retry.maxAttempts,
      maxAgeMs: r.retry.maxAge,
      backoff: {
        retries: r.retry.maxAttempts - 1,
        baseDelayMs: r.retry.initialDelay,
        maxDelayMs: r.retry.maxDelay,
      },
    });
  }
  return receivers;
}
