import { createHash } from "node:crypto";
import { readClaim } from "../identity/claim-path.ts";
import { IdentityError } from "../identity/errors.ts";
import { canonicalScalar } from "../identity/matchers.ts";
import type { VerifiedToken } from "../identity/verifier.ts";

/** STS limits (AssumeRole API reference). */
export const STS_LIMITS = {
  sessionName: 64,
  sourceIdentity: 64,
  tags: 50,
  tagKey: 128,
  tagValue: 256,
  policy: 2048,
  minDurationSeconds: 900,
  maxDurationSeconds: 43_200,
} as const;

/** Characters STS accepts in RoleSessionName and SourceIdentity: `[\w+=,.@-]`. */
const NAME_CHAR = /[^\w+=,.@-]/g;
/** Characters STS accepts in session tag values: letters, digits, spaces and `_.:/=+-@`. */
const TAG_CHAR = /[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu;

function clamp(text: string, max: number): string {
  if (text.length <= max) return text;
  // Keep the run recognisable and the name unique: a prefix plus a short hash of the whole.
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 8);
  return `${text.slice(0, max - 9)}-${hash}`;
}

/** Makes a string a valid RoleSessionName/SourceIdentity: charset, 2..max characters. */
export function stsName(raw: string, max: number): string {
  const cleaned = raw.replace(NAME_CHAR, "-").replace(/-{2,}/g, "-").replace(/^-|-$/g, "");
  const long = cleaned.length >= 2 ? cleaned : `ferry-${cleaned}`.replace(/-$/, "-x");
  return clamp(long, max);
}

function claim(token: VerifiedToken, path: string): string {
  return canonicalScalar(readClaim(token.claims, path)) ?? "";
}

/**
 * A RoleSessionName that names the run, so CloudTrail shows which job acted: GitHub
 * `gh-<repo>-<run_id>-<attempt>`, GitLab `gl-<project>-<pipeline>-<job>`, Buildkite
 * `bk-<pipeline>-<build>-<job>`, Kubernetes `k8s-<namespace>-<serviceaccount>`, otherwise the subject.
 */
export function roleSessionName(token: VerifiedToken): string {
  const c = (path: string) => claim(token, path);
  let raw: string;
  switch (token.issuer.platform) {
    case "github":
      raw = `gh-${c("repository")}-${c("run_id")}-${c("run_attempt") || "1"}`;
      break;
    case "gitlab":
      raw = `gl-${c("project_path")}-${c("pipeline_id")}-${c("job_id")}`;
      break;
    case "buildkite":
      raw = `bk-${c("pipeline_slug")}-${c("build_number")}-${c("job_id")}`;
      break;
    case "kubernetes":
      raw = `k8s-${c("kubernetes.io.namespace")}-${c("kubernetes.io.serviceaccount.name")}`;
      break;
    default:
      raw = `ferry-${token.subject}`;
  }
  return stsName(raw, STS_LIMITS.sessionName);
}

/**
 * The SourceIdentity: who started the run where the platform says (GitHub `actor`, GitLab
 * `user_login`), else the token's subject. STS keeps it through role chaining and CloudTrail logs it.
 */
export function sourceIdentity(token: VerifiedToken): string {
  const actor =
    token.issuer.platform === "github"
      ? claim(token, "actor")
      : token.issuer.platform === "gitlab"
        ? claim(token, "user_login")
        : "";
  return stsName(actor || token.subject, STS_LIMITS.sourceIdentity);
}

/** Makes a claim value a valid session tag value: STS's charset (others become `_`), ≤ 256 characters. */
export function tagValue(raw: string): string {
  return raw.replace(TAG_CHAR, "_").slice(0, STS_LIMITS.tagValue);
}

/**
 * Session tags from the configured `tag key → claim path` map. A claim the token lacks is a refusal
 * (`claim_missing`), not an absent tag: role policies that test a tag must never see it missing.
 */
export function sessionTags(
  token: VerifiedToken,
  spec: Readonly<Record<string, string>>,
): { Key: string; Value: string }[] {
  return Object.entries(spec).map(([key, path]) => {
    const value = readClaim(token.claims, path);
    const text = Array.isArray(value)
      ? value
          .map(canonicalScalar)
          .filter((v) => v !== undefined)
          .join(":")
      : canonicalScalar(value);
    if (text === undefined) {
      throw new IdentityError(
        "claim_missing",
        `the credential tags the session with claim "${path}", which the token lacks`,
        {
          detail: { claim: path, tag: key },
        },
      );
    }
    return { Key: key, Value: tagValue(text) };
  });
}

/** DurationSeconds: the credential's ttl, capped by the role's maximum, never under STS's 900 s minimum. */
export function durationSeconds(ttlMs: number, maxSessionMs: number | undefined): number {
  const ttl = Math.floor(ttlMs / 1000);
  const max = Math.floor((maxSessionMs ?? 3_600_000) / 1000);
  return Math.min(STS_LIMITS.maxDurationSeconds, Math.max(STS_LIMITS.minDurationSeconds, Math.min(ttl, max)));
}
