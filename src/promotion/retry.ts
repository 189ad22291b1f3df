import { errorCodeOf, isRetryable } from "../common/errors.ts";
import { LeaseLostError } from "../store/leases.ts";

/** Whether a step's error is worth another attempt, and the stable reason it is reported with. */
export interface StepErrorClass {
  retryable: boolean;
  reason: string;
}

/**
 * Retryable or final, for a step's error, by the error table's `retryable` column
 * (`isRetryable` in src/common/errors.ts): network failures, 5xx-like codes and timeouts are
 * retried, as is a lost lease (another worker, or this one later, resumes); every other code
 * (denied, not found, a 4xx from the registry, `digest_mismatch`) is final and fails the promotion
 * with its code as the reason. Retries are bounded by `promotion.stepRetries`.
 */
export function classifyStepError(err: unknown): StepErrorClass {
  if (err instanceof LeaseLostError) return { retryable: true, reason: "lease_lost" };
  return { retryable: isRetryable(err), reason: errorCodeOf(err) };
}

const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

/** The pause before retry `attempt` (1-based): doubling from 500 ms up to 30 s, jittered over its upper half. */
export function stepBackoff(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + random() / 2));
}
