import type { KeySource } from "../../src/identity/jwks.ts";
import type { TrustedIssuer, VerifiedToken } from "../../src/identity/verifier.ts";

/**
 * A trusted GitHub Actions issuer (RS256, 60 s leeway, `jti` required) for code that never checks a
 * signature: its key source is a placeholder that must not be called. `over` replaces fields.
 */
export function pipelineIssuer(over: Partial<TrustedIssuer> = {}): TrustedIssuer {
  return {
    name: "github",
    url: "https://token.actions.githubusercontent.com",
    audience: "ferry",
    algorithms: ["RS256"],
    leewayMs: 60_000,
    requireJti: true,
    kind: "pipeline",
    platform: "github",
    keys: {} as KeySource,
    ...over,
  };
}

/**
 * A token as a verifier would return it, without one: from {@link pipelineIssuer}, for the main
 * branch of acme/web, with no claims and zero times unless `over` says otherwise.
 */
export function verifiedToken(over: Partial<VerifiedToken> = {}): VerifiedToken {
  return {
    issuer: pipelineIssuer(),
    subject: "repo:acme/web:ref:refs/heads/main",
    audience: ["ferry"],
    claims: {},
    jti: "j",
    issuedAt: 0,
    expiresAt: 0,
    sha256: "0".repeat(64),
    replayKey: "0".repeat(64),
    ...over,
  };
}
