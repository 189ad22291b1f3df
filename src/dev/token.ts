import { randomInt, randomUUID } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, SignJWT } from "jose";
import { FerryError } from "../common/errors.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { SigningKey } from "../signing/keys.ts";

/** How long a dev token lives: long enough for one tour step, short enough not to linger. */
export const DEV_TOKEN_TTL_SECONDS = 300;

type Issuer = FerryConfig["issuers"][number];

/** The dev issuers of a config (those with `devKey`), with their index for error paths. */
export function devIssuers(config: Pick<FerryConfig, "issuers">): { issuer: Issuer; index: number }[] {
  return config.issuers.flatMap((issuer, index) => (issuer.devKey === undefined ? [] : [{ issuer, index }]));
}

/**
 * The claims of a GitHub-shaped pipeline run, so a dev pipeline token looks like what a real
 * GitHub Actions job presents (and what docs/identity.md's policies pin). Its actor `dev-ci` is a
 * CI account no dev person links to, so separation of duties admits alice and bob as approvers.
 */
function pipelineDefaults(): Record<string, unknown> {
  return {
    repository: "acme/demo",
    repository_id: "1",
    repository_owner: "acme",
    repository_owner_id: "1",
    ref: "refs/heads/main",
    ref_type: "branch",
    sha: "0".repeat(40),
    event_name: "push",
    run_id: String(randomInt(1, 2 ** 31)),
    run_attempt: "1",
    runner_environment: "github-hosted",
    actor: "dev-ci",
    actor_id: "1000",
    workflow_ref: "acme/demo/.github/workflows/release.yml@refs/heads/main",
  };
}

/** One concrete value a config claim matcher accepts, or why none can be chosen. */
function valueFor(matcher: unknown, name: string): unknown {
  if (Array.isArray(matcher)) return matcher[0];
  if (matcher !== null && typeof matcher === "object") {
    throw new FerryError(
      "validation_failed",
      `claim ${name} is matched by a pattern (${Object.keys(matcher).join(", ")}): write an exact value in the dev config's pipelines`,
    );
  }
  return matcher;
}

/** Sets a claim at a dotted path (`"kubernetes.io.namespace"` nests as the matchers read it). */
function setClaim(claims: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let at = claims;
  for (const part of parts.slice(0, -1)) {
    const next = at[part];
    at[part] = next !== null && typeof next === "object" ? next : {};
    at = at[part] as Record<string, unknown>;
  }
  at[parts.at(-1)!] = value;
}

/**
 * The claims of a pipeline token for `app`: GitHub-shaped defaults, then every claim the app's
 * `pipelines` rule for this issuer pins (the first value of a list), so the token matches it.
 */
export function pipelineClaims(
  config: Pick<FerryConfig, "apps">,
  app: string,
  issuer: Issuer,
): Record<string, unknown> {
  const found = config.apps.find((a) => a.name === app);
  if (found === undefined) {
    const known = config.apps.map((a) => a.name).join(", ") || "none";
    throw new FerryError("not_found", `no app ${app} in the config (apps: ${known})`);
  }
  const rule = found.pipelines.find((p) => p.issuer === issuer.name);
  if (rule === undefined) {
    throw new FerryError("not_found", `app ${app} has no pipelines rule for the dev issuer ${issuer.name}`);
  }
  const claims = pipelineDefaults();
  for (const [name, matcher] of Object.entries(rule.claims)) setClaim(claims, name, valueFor(matcher, name));
  return claims;
}

/**
 * The claims of a person's token: the issuer's `groupsClaim` with `groups`, and each `links` claim
 * with the person's name as their CI login, so separation of duties can compare them.
 */
export function personClaims(
  issuer: Issuer,
  person: string,
  groups: readonly string[],
): Record<string, unknown> {
  const claims: Record<string, unknown> = { name: person, email: `${person}@dev.invalid` };
  if (issuer.groupsClaim !== undefined) setClaim(claims, issuer.groupsClaim, [...groups]);
  for (const path of Object.values(issuer.links ?? {}))
    if (path !== undefined) setClaim(claims, path, person);
  return claims;
}

/**
 * Signs a dev token (ES256, `kid` the key's RFC 7638 thumbprint, as Ferry's key set names keys):
 * `iss` and `aud` of the issuer, 5 minutes of life, a fresh `jti` (Ferry's replay protection
 * spends a token on each call that changes something).
 */
export async function mintDevToken(
  key: SigningKey,
  issuer: Issuer,
  subject: string,
  claims: Record<string, unknown>,
  now = Date.now(),
): Promise<string> {
  const kid = await calculateJwkThumbprint(await exportJWK(key.publicKey), "sha256");
  const iat = Math.floor(now / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
    .setIssuer(issuer.url)
    .setAudience(issuer.audience)
    .setSubject(subject)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + DEV_TOKEN_TTL_SECONDS)
    .setJti(randomUUID())
    .sign(key.privateKey);
}
