import type { Webhook } from "standardwebhooks";
import { isConnectionError } from "../common/backoff.ts";
import { readCapped } from "../common/read-capped.ts";

/** How much of a receiver's answer is read (and discarded) so the connection can be reused. */
export const MAX_ANSWER_BYTES = 16 * 1024;

/** What one delivery attempt came to. */
export type AttemptResult =
  /** A 2xx: delivered. */
  | { kind: "delivered"; status: number }
  /** Worth trying again: a 5xx, 408, 429, a 3xx (redirects are not followed), a timeout, a broken connection. */
  | { kind: "retry"; outcome: string; status?: number; retryAfter?: string | null }
  /** Another 4xx: the receiver refused this delivery, and will refuse it again. */
  | { kind: "refused"; outcome: string; status: number };

/** One attempt's request: the allow-listed URL, the stored body, and the headers to send. */
export interface AttemptRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

/**
 * The Standard Webhooks headers of one attempt: `webhook-id` stays the outbox entry's id across
 * retries (receivers de-duplicate on it); the timestamp and signature are the attempt's own, since
 * receivers refuse a timestamp older than a few minutes.
 */
export function standardHeaders(
  webhook: Webhook,
  id: string,
  at: Date,
  body: string,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": webhook.sign(id, at, body),
  };
}

/** Maps a non-2xx status to the attempt's result (only 408 and 429 among the 4xx are retried). */
function classify(status: number, retryAfter: string | null): AttemptResult {
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (status >= 300 && status < 400) return { kind: "retry", outcome: "redirect", status };
  if (status >= 400 && status < 500 && status !== 408 && status !== 429)
    return { kind: "refused", outcome: `http_${status}`, status };
  return { kind: "retry", outcome: `http_${status}`, status, retryAfter };
}

/**
 * POSTs one delivery and reports what came of it; never throws for the receiver's failures.
 * Redirects are not followed (a receiver cannot send Ferry elsewhere); the attempt is bounded by
 * `timeoutMs`, and at most {@link MAX_ANSWER_BYTES} of the answer are read, then dropped. An abort
 * of `signal` (shutdown, lost lease) rejects with its reason: that attempt did not happen.
 */
export async function attemptDelivery(request: AttemptRequest, signal: AbortSignal): Promise<AttemptResult> {
  const timeout = AbortSignal.timeout(request.timeoutMs);
  let res: Response;
  try {
    res = await fetch(request.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "ferry-notifications",
        ...request.headers,
      },
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (timeout.aborted) return { kind: "retry", outcome: "timeout" };
    return { kind: "retry", outcome: isConnectionError(err) ? "connection_failed" : "request_failed" };
  }
  if (res.body !== null) {
    // Reading the answer may time out too; what it says does not matter, only the status does.
    await readCapped(res.body, MAX_ANSWER_BYTES).catch(() => undefined);
  }
  if (signal.aborted) throw signal.reason;
  return classify(res.status, res.headers.get("retry-after"));
}
