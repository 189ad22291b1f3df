import { readClaim } from "./claim-path.ts";
import type { Platform } from "./claims.ts";
import type { VerifiedToken } from "./verifier.ts";

/** The issuer a principal's token came from. */
export interface PrincipalIssuer {
  /** The config name (`issuers[].name`), or `ferry` for a token Ferry minted. */
  name: string;
  url: string;
  platform: Platform;
}

interface PrincipalBase {
  issuer: PrincipalIssuer;
  /** The token's `sub`. */
  subject: string;
  /** The token's verified claims. */
  claims: Readonly<Record<string, unknown>>;
  /** SHA-256 of the token: what logs and records name the request's credential by. */
  tokenSha256: string;
}

/** A pipeline: a CI/CD job or a workload, from a pipeline issuer or a Ferry-minted token. */
export interface PipelinePrincipal extends PrincipalBase {
  kind: "pipeline";
  /** `oidc`: the platform's own token; `ferry`: a token Ferry minted in an exchange. */
  via: "oidc" | "ferry";
  /** For a Ferry-minted token: the original issuer and subject (its RFC 8693 `act` claim). */
  actor?: { issuer: string; subject: string } | undefined;
  /** For a Ferry-minted token: the environment and credential it was minted for. */
  environment?: string | undefined;
  credential?: string | undefined;
}

/** A person, from a human issuer (SSO), with the groups its `groupsClaim` lists. */
export interface HumanPrincipal extends PrincipalBase {
  kind: "human";
  groups: readonly string[];
  email?: string | undefined;
  name?: string | undefined;
}

/** Who is calling: what the auth middleware yields for every authenticated `/v1/*` request. */
export type Principal = PipelinePrincipal | HumanPrincipal;

/** The issuer name Ferry's own tokens are verified under. */
export const FERRY_ISSUER_NAME = "ferry";

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A human's groups: a list of strings, or one string, at the issuer's `groupsClaim` path. */
export function groupsOf(token: VerifiedToken): string[] {
  if (token.issuer.groupsClaim === undefined) return [];
  const value = readClaim(token.claims, token.issuer.groupsClaim);
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((g): g is string => typeof g === "string") : [];
}

/** Builds the principal for a verified token, by its issuer's kind. */
export function principalFromToken(token: VerifiedToken): Principal {
  const base = {
    issuer: { name: token.issuer.name, url: token.issuer.url, platform: token.issuer.platform },
    subject: token.subject,
    claims: token.claims,
    tokenSha256: token.sha256,
  };
  if (token.issuer.kind === "human") {
    return {
      ...base,
      kind: "human",
      groups: groupsOf(token),
      email: optionalString(token.claims.email),
      name: optionalString(token.claims.name) ?? optionalString(token.claims.preferred_username),
    };
  }
  if (token.issuer.name === FERRY_ISSUER_NAME) {
    const act = token.claims.act as { iss?: unknown; sub?: unknown } | undefined;
    const actIss = optionalString(act?.iss);
    const actSub = optionalString(act?.sub);
    return {
      ...base,
      kind: "pipeline",
      via: "ferry",
      actor: actIss && actSub ? { issuer: actIss, subject: actSub } : undefined,
      environment: optionalString(token.claims.environment),
      credential: optionalString(token.claims.credential),
    };
  }
  return { ...base, kind: "pipeline", via: "oidc" };
}
