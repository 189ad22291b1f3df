/**
 * Ferry's closed list of error codes. Every error that reaches a caller carries one of these codes;
 * `openapi.yaml` documents the same list (a test keeps them equal). The HTTP status lives here, in
 * one table, so no route decides a status on its own.
 */
export const ERROR_CODES = {
  bad_request: { status: 400, title: "The request is malformed" },
  invalid_json: { status: 400, title: "The request body is not valid JSON" },
  validation_failed: { status: 400, title: "The request did not pass validation" },
  tag_reference: { status: 400, title: "A tag was given where a digest is required" },
  unauthenticated: { status: 401, title: "Authentication is required" },
  forbidden: { status: 403, title: "The caller is not allowed to do this" },
  not_found: { status: 404, title: "No such resource" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  conflict: { status: 409, title: "The request conflicts with the current state" },
  payload_too_large: { status: 413, title: "The request body is too large" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  rate_limited: { status: 429, title: "Too many requests" },
  internal: { status: 500, title: "Internal error" },
  upstream_failed: { status: 502, title: "An upstream service failed" },
  digest_mismatch: { status: 502, title: "Content from an upstream did not match its digest" },
  unavailable: { status: 503, title: "The service is not ready" },
  upstream_timeout: { status: 504, title: "An upstream service timed out" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Options shared by every {@link FerryError}. */
export interface FerryErrorOptions {
  /** The underlying error, kept for the log; never sent to a caller. */
  cause?: unknown;
  /** Structured, caller-safe extra fields (for example the list of validation problems). */
  extra?: Record<string, unknown>;
}

/**
 * A typed error with a stable machine code. The message is safe to show a caller; anything that
 * is not (tokens, upstream bodies) belongs in `cause`, which only reaches the log.
 */
export class FerryError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: C, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FerryError";
    this.code = code;
    this.extra = options.extra;
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
