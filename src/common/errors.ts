import { isConnectionError } from "./backoff.ts";

/**
 * Ferry's closed list of error codes. Every error that reaches a caller carries one of these codes;
 * `openapi.yaml` documents the same list (a test keeps them equal). The HTTP status lives here, in
 * one table, so no route decides a status on its own; so does `retryable`: whether a step may try
 * the same thing again later (the upstream or Ferry was unwell) or the failure is final (the request,
 * the config or the content is wrong, and trying again gets the same answer). See {@link isRetryable}.
 */
export const ERROR_CODES = {
  bad_request: { status: 400, retryable: false, title: "The request is malformed" },
  invalid_json: { status: 400, retryable: false, title: "The request body is not valid JSON" },
  validation_failed: { status: 400, retryable: false, title: "The request did not pass validation" },
  tag_reference: { status: 400, retryable: false, title: "A tag was given where a digest is required" },
  unauthenticated: { status: 401, retryable: false, title: "Authentication is required" },
  forbidden: { status: 403, retryable: false, title: "The caller is not allowed to do this" },
  not_found: { status: 404, retryable: false, title: "No such resource" },
  method_not_allowed: { status: 405, retryable: false, title: "Method not allowed" },
  conflict: { status: 409, retryable: false, title: "The request conflicts with the current state" },
  payload_too_large: {
    status: 413,
    retryable: false,
    title: "The request body, or an object fetched from an upstream, is too large",
  },
  unsupported_media_type: { status: 415, retryable: false, title: "Unsupported media type" },
  idempotency_key_reused: {
    status: 422,
    retryable: false,
    title: "The Idempotency-Key was already used for another request",
  },
  rate_limited: { status: 429, retryable: true, title: "Too many requests" },
  // Retryable: an unexpected failure may be a passing one (a dropped database connection); a step
  // that retries is bounded by its own retry budget.
  internal: { status: 500, retryable: true, title: "Internal error" },
  // A 5xx after the registry client's own retries, or a connection failure: worth a later try.
  upstream_failed: { status: 502, retryable: true, title: "An upstream service failed" },
  // A 401/403 from an upstream: Ferry's credentials or grants are wrong; only a config change helps.
  upstream_denied: {
    status: 502,
    retryable: false,
    title: "An upstream service refused Ferry's credentials",
  },
  // Malformed JSON or a wrong shape from an upstream: the same request gets the same answer.
  upstream_invalid: {
    status: 502,
    retryable: false,
    title: "An upstream service answered something unusable",
  },
  digest_mismatch: {
    status: 502,
    retryable: false,
    title: "Content from an upstream did not match its digest",
  },
  unavailable: { status: 503, retryable: true, title: "The service is not ready" },
  upstream_timeout: { status: 504, retryable: true, title: "An upstream service timed out" },
} as const satisfies Record<string, { status: number; retryable: boolean; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Options shared by every {@link FerryError}. */
export interface FerryErrorOptions {
  /** The underlying error, kept for the log; never sent to a caller. */
  cause?: unknown;
  /** Structured, caller-safe extra fields (for example the list of validation problems). */
  extra?: Record<string, unknown>;
  /**
   * Log-only structured detail (an upstream's status, which limit was passed): written with the
   * error's log line, never sent to a caller. Never put a token, key or secret in it.
   */
  detail?: Record<string, unknown>;
}

/**
 * A typed error with a stable machine code. The message is safe to show a caller; anything that
 * is not (tokens, upstream bodies) belongs in `cause`, which only reaches the log.
 */
export class FerryError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly extra: Record<string, unknown> | undefined;
  /** Log-only detail; see {@link FerryErrorOptions.detail}. */
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: C, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FerryError";
    this.code = code;
    this.extra = options.extra;
    this.detail = options.detail;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

/** True when `value` is a {@link FerryError}, optionally with one of the given codes. */
export function isFerryError<C extends ErrorCode>(value: unknown, ...codes: C[]): value is FerryError<C> {
  return value instanceof FerryError && (codes.length === 0 || codes.includes(value.code as C));
}

/**
 * The code an error is reported with: a {@link FerryError}'s own; for anything else what it would
 * become on the way to a caller: a connection failure is `upstream_failed`, a timeout
 * (`AbortSignal.timeout`) `upstream_timeout`, and any other error `internal`.
 */
export function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof FerryError) return err.code;
  if (isConnectionError(err)) return "upstream_failed";
  if (err instanceof Error && err.name === "TimeoutError") return "upstream_timeout";
  return "internal";
}

/**
 * Whether a step may try again later: the `retryable` of {@link errorCodeOf}'s row. So a
 * `FerryError` goes by its code; a connection failure or timeout is retryable; any other error is
 * `internal`, retryable too, because an unexpected failure may be a passing one and the caller's
 * retry budget bounds it (a bug then fails after that budget, not forever).
 */
export function isRetryable(err: unknown): boolean {
  return ERROR_CODES[errorCodeOf(err)].retryable;
}
