// The generic parts of retrying (policy, jittered backoff, connection errors) are in
// src/common/backoff.ts; this file holds what is particular to registries' HTTP answers.

/**
 * Statuses worth another try: request timeout, rate limiting, and server errors that can be
 * transient. Never any other 4xx (the request itself is wrong, or access is denied), and not 501/505
 * (the server will never do it).
 */
export function isRetryableStatus(status: number): boolean {
  return (
    status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505)
  );
}
