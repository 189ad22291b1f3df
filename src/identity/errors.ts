import { type ErrorCode, FerryError } from "../common/errors.ts";

/** RFC 6749 §5.2 / RFC 8693 §2.2.2 error codes the token endpoint answers with (plus RFC 8628's `slow_down`). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_grant"
  | "invalid_target"
  | "unsupported_grant_type"
  | "access_denied"
  | "slow_down"
  | "temporarily_unavailable"
  | "server_error";

/**
 * Why an identity or a token exchange was refused: the closed list of reason codes. Each reason has
 * one row: its RFC 6749 error and status at `POST /v1/token`, and its problem code on `/v1/*`.
 * Callers see the reason code (short, generic); the log gets the detail.
 */
export const IDENTITY_REASONS = {
  request_invalid: { oauth: "invalid_request", status: 400, problem: "bad_request" },
  grant_type_unsupported: { oauth: "unsupported_grant_type", status: 400, problem: "bad_request" },
  token_type_unsupported: { oauth: "invalid_request", status: 400, problem: "bad_request" },
  target_unknown: { oauth: "invalid_target", status: 400, problem: "bad_request" },
  token_missing: { oauth: "invalid_request", status: 400, problem: "unauthenticated" },
  token_too_large: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  token_malformed: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  header_not_allowed: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  algorithm_not_allowed: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  issuer_unknown: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  key_unknown: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  signature_invalid: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  audience_mismatch: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  token_expired: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  token_not_yet_valid: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  token_issued_in_future: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  token_too_old: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  jti_missing: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  token_replayed: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  claims_invalid: { oauth: "invalid_grant", status: 400, problem: "unauthenticated" },
  claim_missing: { oauth: "invalid_grant", status: 400, problem: "forbidden" },
  policy_denied: { oauth: "access_denied", status: 403, problem: "forbidden" },
  rate_limited: { oauth: "slow_down", status: 429, problem: "rate_limited" },
  issuer_unavailable: { oauth: "temporarily_unavailable", status: 503, problem: "upstream_failed" },
  credential_unavailable: { oauth: "temporarily_unavailable", status: 503, problem: "upstream_failed" },
  // The cloud refused Ferry's own request (a role Ferry may not assume, a policy it rejects): final.
  credential_refused: { oauth: "server_error", status: 502, problem: "upstream_denied" },
  internal: { oauth: "server_error", status: 500, problem: "internal" },
} as const satisfies Record<string, { oauth: OAuthErrorCode; status: number; problem: ErrorCode }>;

/** One of {@link IDENTITY_REASONS}. */
export type IdentityReason = keyof typeof IDENTITY_REASONS;

/** Options for an {@link IdentityError}. */
export interface IdentityErrorOptions {
  cause?: unknown;
  /** Log-only detail (claim-by-claim explanations, upstream codes); never sent to the caller. */
  detail?: Record<string, unknown>;
  /** For `rate_limited`: seconds until a retry can succeed. */
  retryAfterSeconds?: number;
}

/**
 * A refused identity or exchange. It is a {@link FerryError} (so `/v1/*` answers it as a problem
 * document with `reason` as an extra field) that also carries the fine-grained reason the token
 * endpoint maps to its RFC 6749 error. The message is caller-safe and short.
 */
export class IdentityError extends FerryError {
  readonly reason: IdentityReason;
  readonly retryAfterSeconds: number | undefined;

  constructor(reason: IdentityReason, message: string, options: IdentityErrorOptions = {}) {
    super(IDENTITY_REASONS[reason].problem, message, {
      cause: options.cause,
      extra: { reason },
      ...(options.detail === undefined ? {} : { detail: options.detail }),
    });
    this.name = "IdentityError";
    this.reason = reason;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The RFC 6749 error code for the token endpoint. */
  get oauthError(): OAuthErrorCode {
    return IDENTITY_REASONS[this.reason].oauth;
  }

  /** The HTTP status at the token endpoint. */
  get oauthStatus(): number {
    return IDENTITY_REASONS[this.reason].status;
  }
}

/** True when `value` is an {@link IdentityError}, optionally with one of the given reasons. */
export function isIdentityError(value: unknown, ...reasons: IdentityReason[]): value is IdentityError {
  return value instanceof IdentityError && (reasons.length === 0 || reasons.includes(value.reason));
}
