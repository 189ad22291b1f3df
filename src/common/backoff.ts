import type { Clock } from "./clock.ts";

/** How often and how patiently a failed request is tried again. */
export interface RetryPolicy {
  /** Retries after the first attempt (0 = none). */
  retries: number;
  /** The backoff ceiling of the first retry; it doubles per retry up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A source of randomness in [0, 1) for the jitter (tests pass a fixed one). */
  random?: () => number;
}

/** The default policy: 3 retries, 200 ms doubling to at most 5 s, full jitter. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseDelayMs: 200, maxDelayMs: 5_000 };

// Error codes of Node's sockets and undici for a connection that failed or broke before an answer.
const CONNECTION_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** True when `err` (from fetch) is a connection failure, judged by its error code, never its text. */
export function isConnectionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The pause before retry number `attempt` (1-based): full jitter over an exponentially growing
 * ceiling. A `Retry-After` in seconds is honoured as a floor, capped at `maxDelayMs`.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfter?: string | null): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.floor((policy.random ?? Math.random)() * ceiling);
  const seconds = retryAfter ? Number(retryAfter) : Number.NaN;
  const floor = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, policy.maxDelayMs) : 0;
  return Math.max(jittered, floor);
}

/** Where and how {@link waitBeforeRetry} waits. */
export interface RetryWait {
  /** The answer's `Retry-After` header, honoured as a floor. */
  retryAfter?: string | null | undefined;
  /** Ends the wait early: it then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/**
 * Waits the {@link backoffDelay} before retry number `attempt` on `clock` (so tests move time
 * instead of sleeping), ending early, rejected, when `signal` aborts.
 */
export function waitBeforeRetry(
  clock: Clock,
  attempt: number,
  policy: RetryPolicy,
  wait: RetryWait = {},
): Promise<void> {
  return clock.sleep(backoffDelay(attempt, policy, wait.retryAfter), wait.signal);
}
