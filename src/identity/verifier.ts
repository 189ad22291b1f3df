import { hash } from "node:crypto";
import { type Clock, systemClock } from "../common/clock.ts";
import { describeClaimIssues, PLATFORM_CLAIMS, type Platform, registeredClaims } from "./claims.ts";
import { IdentityError } from "./errors.ts";
import type { KeySource } from "./jwks.ts";
import { verifyJws } from "./jws.ts";
import { decodeJwt } from "./jwt.ts";

/** An issuer whose tokens Ferry accepts, with everything needed to check them. */
export interface TrustedIssuer {
  /** The config name (`issuers[].name`), or `ferry` for Ferry's own tokens. */
  name: string;
  /** Matched exactly against `iss`. */
  url: string;
  /** `aud` must contain this. */
  audience: string;
  algorithms: readonly string[];
  leewayMs: number;
  maxTokenAgeMs?: number | undefined;
  requireJti: boolean;
  kind: "pipeline" | "human";
  platform: Platform;
  groupsClaim?: string | undefined;
  keys: KeySource;
}

/** A token whose signature and claims were checked. Claims are read-only and parsed. */
export interface VerifiedToken {
  issuer: TrustedIssuer;
  subject: string;
  audience: readonly string[];
  claims: Readonly<Record<string, unknown>>;
  jti: string | undefined;
  /** Seconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
  /** SHA-256 of the token, hex: what audit records and logs name it by. */
  sha256: string;
  /**
   * What makes this token single-use, hex: SHA-256 of (iss, jti), or, when the issuer sends no
   * `jti` (only possible with `requireJti: false`), of (iss, the signed `header.payload`). Never of
   * the whole string: the signature part can be re-encoded (ECDSA's (r, n − s) is just as valid)
   * without changing what was signed, and a re-encoded token is the same token.
   */
  replayKey: string;
}

/** The port every authenticated path uses: checks a compact JWT from one of the trusted issuers. */
export interface TokenVerifier {
  /** Verifies a token (does not consume it: see `ReplayGuard`). Throws {@link IdentityError}. */
  verify(token: string): Promise<VerifiedToken>;
  /** The trusted issuer with this exact `iss`, if any. */
  issuerByUrl(url: string): TrustedIssuer | undefined;
}

/** Options of {@link createTokenVerifier}. */
export interface VerifierOptions {
  /** The clock `exp`, `nbf`, `iat` and the token's age are checked against (tests pass a `FakeClock`). */
  clock?: Clock;
}

/**
 * Builds a verifier over a fixed set of issuers. The order of checks is the defence: size and shape
 * before parsing, forbidden headers before anything is trusted, the exact `iss` lookup before any
 * outbound request (a token naming an unregistered issuer never makes Ferry fetch anything), the
 * issuer's algorithm allow-list before the key is fetched, then signature, then claims.
 */
export function createTokenVerifier(
  issuers: readonly TrustedIssuer[],
  options: VerifierOptions = {},
): TokenVerifier {
  const byUrl = new Map<string, TrustedIssuer>();
  for (const issuer of issuers) {
    if (byUrl.has(issuer.url)) throw new Error(`two trusted issuers share the URL ${issuer.url}`);
    byUrl.set(issuer.url, issuer);
  }
  const clock = options.clock ?? systemClock;

  async function verify(token: string): Promise<VerifiedToken> {
    const { header, payload } = decodeJwt(token);
    const iss = payload.iss;
    const issuer = typeof iss === "string" ? byUrl.get(iss) : undefined;
    if (issuer === undefined) {
      throw new IdentityError("issuer_unknown", "the token's issuer is not registered with Ferry", {
        // No registered issuer, so no name: the log line gets the URL as `issuerUrl`.
        detail: { issuerUrl: typeof iss === "string" ? iss.slice(0, 200) : typeof iss },
      });
    }
    if (!issuer.algorithms.includes(header.alg)) {
      throw new IdentityError(
        "algorithm_not_allowed",
        `the algorithm ${header.alg.slice(0, 32)} is not accepted from this issuer`,
        {
          detail: { issuer: issuer.name, alg: header.alg.slice(0, 32), allowed: issuer.algorithms },
        },
      );
    }
    const key = await issuer.keys.key(header.kid, header.alg);
    const valid = await verifyJws(token, header.alg, key).catch((cause: unknown) => {
      throw new IdentityError("key_unknown", "the issuer's key for this token cannot be used", {
        cause,
        detail: { issuer: issuer.name, kid: header.kid?.slice(0, 100), alg: header.alg },
      });
    });
    if (!valid) {
      throw new IdentityError("signature_invalid", "the token's signature does not verify", {
        detail: { issuer: issuer.name, kid: header.kid?.slice(0, 100) },
      });
    }
    return checkClaims(token, payload, issuer, clock.now());
  }

  return { verify, issuerByUrl: (url) => byUrl.get(url) };
}

function checkClaims(
  token: string,
  payload: Record<string, unknown>,
  issuer: TrustedIssuer,
  nowMs: number,
): VerifiedToken {
  const parsed = registeredClaims.safeParse(payload);
  if (!parsed.success) {
    throw new IdentityError(
      "claims_invalid",
      `the token's claims are invalid: ${describeClaimIssues(parsed.error)}`,
      {
        cause: parsed.error,
        detail: { issuer: issuer.name },
      },
    );
  }
  const claims = parsed.data;
  const audience = typeof claims.aud === "string" ? [claims.aud] : claims.aud;
  const detail = { issuer: issuer.name, sub: claims.sub.slice(0, 200) };
  if (!audience.includes(issuer.audience)) {
    throw new IdentityError("audience_mismatch", "the token's audience is not this Ferry", {
      detail: { ...detail, aud: audience.slice(0, 5).map((a) => a.slice(0, 200)), expected: issuer.audience },
    });
  }
  const now = nowMs / 1000;
  const leeway = issuer.leewayMs / 1000;
  if (now > claims.exp + leeway) {
    throw new IdentityError("token_expired", "the token has expired", {
      detail: { ...detail, exp: claims.exp, now },
    });
  }
  if (claims.nbf !== undefined && claims.nbf > now + leeway) {
    throw new IdentityError("token_not_yet_valid", "the token is not valid yet (nbf)", {
      detail: { ...detail, nbf: claims.nbf, now },
    });
  }
  if (claims.iat > now + leeway) {
    throw new IdentityError("token_issued_in_future", "the token was issued in the future (iat)", {
      detail: { ...detail, iat: claims.iat, now },
    });
  }
  if (issuer.maxTokenAgeMs !== undefined && now - claims.iat > issuer.maxTokenAgeMs / 1000 + leeway) {
    throw new IdentityError("token_too_old", "the token is older than this issuer's maxTokenAge", {
      detail: { ...detail, iat: claims.iat, now, maxTokenAgeMs: issuer.maxTokenAgeMs },
    });
  }
  if (claims.jti === undefined && issuer.requireJti) {
    throw new IdentityError("jti_missing", "the token has no jti, which replay protection needs", { detail });
  }
  const platform = PLATFORM_CLAIMS[issuer.platform];
  if (platform !== undefined) {
    const checked = platform.safeParse(payload);
    if (!checked.success) {
      throw new IdentityError(
        "claims_invalid",
        `the token's ${issuer.platform} claims are invalid: ${describeClaimIssues(checked.error)}`,
        { cause: checked.error, detail },
      );
    }
  }
  const sha256 = hash("sha256", token, "hex");
  return {
    issuer,
    subject: claims.sub,
    audience,
    claims: Object.freeze({ ...payload }),
    jti: claims.jti,
    issuedAt: claims.iat,
    expiresAt: claims.exp,
    sha256,
    replayKey: replayKey(token, issuer.url, claims.jti),
  };
}

/**
 * The single-use key of {@link VerifiedToken.replayKey}. The (iss, jti) form is kept as it was, so
 * rows written before an upgrade still count; the signing-input form starts with `jws\n`, which no
 * URL does, so the two forms never meet.
 */
function replayKey(token: string, issuerUrl: string, jti: string | undefined): string {
  if (jti !== undefined) return hash("sha256", `${issuerUrl}\n${jti}`, "hex");
  return hash("sha256", `jws\n${issuerUrl}\n${token.slice(0, token.lastIndexOf("."))}`, "hex");
}
