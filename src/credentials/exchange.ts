import { hash } from "node:crypto";
import { type Clock, systemClock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import type { Rate, RateLimiter } from "../common/rate-limit.ts";
import { IdentityError, isIdentityError } from "../identity/errors.ts";
import type { CompiledPolicy } from "../identity/policy.ts";
import { mismatchSummary } from "../identity/policy.ts";
import type { ReplayGuard } from "../identity/replay.ts";
import type { TokenVerifier, VerifiedToken } from "../identity/verifier.ts";
import type { ExchangeRecorder } from "./audit.ts";
import {
  type CredentialConfig,
  type CredentialMinter,
  ISSUED_TOKEN_TYPE,
  type IssuedCredential,
  TOKEN_EXCHANGE_GRANT,
  TOKEN_TYPES,
} from "./ports.ts";

/** The parameters of an RFC 8693 request, as received (each at most once). */
export interface ExchangeParams {
  grant_type?: string | undefined;
  subject_token?: string | undefined;
  subject_token_type?: string | undefined;
  audience?: string | undefined;
  requested_token_type?: string | undefined;
  resource?: string | undefined;
  actor_token?: string | undefined;
  actor_token_type?: string | undefined;
}

/** A request whose parameters could not even be read (a repeated parameter, a non-string value). */
export interface UnreadableExchange {
  unreadable: string;
}

/** What an exchange is answered with on success. */
export type ExchangeResult = IssuedCredential & { credential: string };

/** The token exchange: `POST /v1/token` calls this and only shapes the answer. */
export interface TokenExchangeService {
  exchange(
    input: ExchangeParams | UnreadableExchange,
    context: { requestId: string },
  ): Promise<ExchangeResult>;
}

/** Everything {@link createTokenExchangeService} wires together. */
export interface TokenExchangeDeps {
  /** Verifies subject tokens: registered issuers only (never Ferry's own tokens). */
  verifier: TokenVerifier;
  replay: ReplayGuard;
  recorder: ExchangeRecorder;
  limiter: RateLimiter;
  /** The per-identity rate of each registered issuer, by issuer URL. */
  rates: ReadonlyMap<string, Rate>;
  credentials: ReadonlyMap<string, CredentialConfig>;
  policies: ReadonlyMap<string, CompiledPolicy>;
  minters: Readonly<Record<CredentialConfig["type"], CredentialMinter>>;
  logger: Logger;
  /** Stamps each exchange's audit record. */
  clock?: Clock;
  /** Called once per exchange with its outcome (metrics). */
  onOutcome?: (credential: string, decision: "granted" | "refused", reason: string) => void;
}

const SUBJECT_TOKEN_TYPES = new Set<string>([TOKEN_TYPES.idToken, TOKEN_TYPES.jwt]);

function refuse(reason: "request_invalid", message: string): never {
  throw new IdentityError(reason, message);
}

/**
 * The RFC 8693 exchange, in this order: request shape → grant type → token types → credential
 * (`audience`) → subject token verification → per-identity rate limit → trust policy → single use
 * → mint. Every exchange, granted or refused, is recorded; a grant that cannot be recorded is not
 * answered (no credential leaves without its audit record).
 */
export function createTokenExchangeService(deps: TokenExchangeDeps): TokenExchangeService {
  const clock = deps.clock ?? systemClock;

  async function decide(
    input: ExchangeParams | UnreadableExchange,
    requestId: string,
    seen: { token?: VerifiedToken },
  ): Promise<{ credential: CredentialConfig; issued: IssuedCredential }> {
    if ("unreadable" in input) refuse("request_invalid", input.unreadable);
    if (input.grant_type === undefined) refuse("request_invalid", "grant_type is required");
    if (input.grant_type !== TOKEN_EXCHANGE_GRANT) {
      throw new IdentityError("grant_type_unsupported", `only ${TOKEN_EXCHANGE_GRANT} is supported`);
    }
    if (input.subject_token === undefined || input.subject_token === "")
      refuse("request_invalid", "subject_token is required");
    if (input.subject_token_type === undefined) refuse("request_invalid", "subject_token_type is required");
    if (!SUBJECT_TOKEN_TYPES.has(input.subject_token_type)) {
      throw new IdentityError(
        "token_type_unsupported",
        `subject_token_type must be ${TOKEN_TYPES.idToken} or ${TOKEN_TYPES.jwt}`,
      );
    }
    if (input.actor_token !== undefined || input.actor_token_type !== undefined) {
      refuse("request_invalid", "actor_token is not supported");
    }
    if (input.resource !== undefined)
      refuse("request_invalid", "name the credential with audience, not resource");
    if (input.audience === undefined || input.audience === "") {
      refuse("request_invalid", "audience is required: the name of the credential wanted");
    }
    const credential = deps.credentials.get(input.audience);
    if (credential === undefined) {
      throw new IdentityError("target_unknown", "audience names no credential Ferry issues");
    }
    if (
      input.requested_token_type !== undefined &&
      input.requested_token_type !== ISSUED_TOKEN_TYPE[credential.type]
    ) {
      refuse("request_invalid", `this credential is issued as ${ISSUED_TOKEN_TYPE[credential.type]}`);
    }
    const minter = deps.minters[credential.type];
    const token = await deps.verifier.verify(input.subject_token);
    seen.token = token;
    const rate = deps.rates.get(token.issuer.url);
    if (rate !== undefined) {
      const decision = deps.limiter.take(`${token.issuer.url}\n${token.subject}`, rate);
      if (!decision.allowed) {
        throw new IdentityError("rate_limited", "too many exchanges for this identity; retry later", {
          retryAfterSeconds: decision.retryAfterSeconds,
        });
      }
    }
    const policy = deps.policies.get(credential.name);
    const subject = { issuer: token.issuer.name, claims: token.claims };
    if (policy?.match(subject) === undefined) {
      // Only a refusal pays for the claim-by-claim explanation.
      const decision = policy?.evaluate(subject);
      throw new IdentityError("policy_denied", "no trust policy rule of this credential matches the token", {
        detail: { credential: credential.name, rules: decision ? mismatchSummary(decision) : "no policy" },
      });
    }
    await deps.replay.consume(token);
    const issued = await minter.mint({ credential, token, subjectToken: input.subject_token, requestId });
    return { credential, issued };
  }

  return {
    async exchange(input, { requestId }) {
      const seen: { token?: VerifiedToken } = {};
      const asked = "unreadable" in input ? undefined : input.audience;
      const presented = "unreadable" in input ? undefined : input.subject_token;
      const base = { at: clock.now(), requestId, credential: asked };
      let result: { credential: CredentialConfig; issued: IssuedCredential };
      try {
        result = await decide(input, requestId, seen);
      } catch (err) {
        // The verifier hashed the token if it got that far; hash it here only if it did not.
        const tokenSha256 = seen.token?.sha256 ?? (presented ? hash("sha256", presented, "hex") : undefined);
        const refusal = isIdentityError(err)
          ? err
          : new IdentityError("internal", "the exchange failed; quote the request id", { cause: err });
        // The audit record keeps the issuer URL and the whole subject; the log names identities as
        // every line does (docs/architecture.md, Log fields).
        const who = seen.token ? { issuer: seen.token.issuer.url, subject: seen.token.subject } : {};
        const log = {
          requestId,
          reason: refusal.reason,
          credential: asked?.slice(0, 128),
          ...(seen.token ? loggedIdentity(seen.token) : {}),
        };
        if (refusal.reason === "internal") deps.logger.error({ ...log, err }, "token exchange failed");
        else deps.logger.info({ ...log, ...refusal.detail, tokenSha256 }, "token exchange refused");
        deps.onOutcome?.(knownName(deps, asked), "refused", refusal.reason);
        await deps.recorder
          .record({ ...base, tokenSha256, ...who, decision: "refused", reason: refusal.reason })
          .catch((recordErr: unknown) =>
            deps.logger.error({ err: recordErr, requestId }, "recording a refused token exchange failed"),
          );
        throw refusal;
      }
      const { credential, issued } = result;
      const token = seen.token!;
      try {
        await deps.recorder.record({
          ...base,
          tokenSha256: token.sha256,
          issuer: token.issuer.url,
          subject: token.subject,
          decision: "granted",
          reason: "granted",
          issuedId: issued.id,
          expiresAt: issued.expiresAt,
        });
      } catch (cause) {
        deps.logger.error(
          { err: cause, requestId },
          "recording a granted token exchange failed; credential withheld",
        );
        throw new IdentityError("internal", "the exchange could not be recorded; quote the request id", {
          cause,
        });
      }
      deps.logger.info(
        {
          requestId,
          credential: credential.name,
          ...loggedIdentity(token),
          issuedId: issued.id,
          expiresIn: issued.expiresIn,
          tokenSha256: token.sha256,
        },
        "token exchange granted",
      );
      deps.onOutcome?.(credential.name, "granted", "granted");
      return { ...issued, credential: credential.name };
    },
  };
}

/** A verified token's identity as log lines name it: the issuer's config name and `sub`, truncated. */
function loggedIdentity(token: VerifiedToken): { issuer: string; sub: string } {
  return { issuer: token.issuer.name, sub: token.subject.slice(0, 200) };
}

/** A credential name for a metric label: only configured names, so a caller cannot grow the label set. */
function knownName(deps: TokenExchangeDeps, asked: string | undefined): string {
  return asked !== undefined && deps.credentials.has(asked) ? asked : "unknown";
}
