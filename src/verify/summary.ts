/**
 * The `summary` check: an upstream SLSA verification summary (VSA) as evidence. Pure, like the other
 * checks: it reads the assessed candidates, the rule and `now`. The summary's own format (the
 * predicate Ferry writes, src/evidence/vsa.ts) is defined here too, so that what one Ferry writes and
 * what another reads cannot drift apart.
 */
import { z } from "zod";
import type { Assessment } from "./assess.ts";
import { failClosed, judge, type Reject, result } from "./checks.ts";
import type { CandidateOutcome, CandidateReason, Check, CheckReason } from "./report.ts";

/** The predicate type of a SLSA verification summary (https://slsa.dev/spec/v1.0/verification_summary). */
export const VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1";

/** `environments[].require.summary`, compiled: whose summary, about which environment, how recent. */
export interface SummaryRule {
  /** The environment the summary must be about (its `policy.uri`). */
  from: string;
  maxAgeMs: number;
  /** The authority whose key must have signed it. */
  authority: string;
  /** That authority's `verifierId`: the summary's `verifier.id` must equal it. */
  verifierId: string;
}

/**
 * The URI naming an environment's policy in the summaries a verifier writes: `<verifier id>/v1/policies/<environment>`.
 * It names the policy; it is not (yet) an endpoint that serves it. The digest beside it is the policy's hash.
 */
export function summaryPolicyUri(verifierId: string, environment: string): string {
  return `${trimSlashes(verifierId)}/v1/policies/${encodeURIComponent(environment)}`;
}

function trimSlashes(uri: string): string {
  return uri.replace(/\/+$/, "");
}

// Consumers must ignore unrecognised fields (the spec's parsing rules): loose objects throughout.
const predicateSchema = z.looseObject({
  verifier: z.looseObject({ id: z.string().min(1) }),
  timeVerified: z.iso.datetime({ offset: true }),
  resourceUri: z.string().min(1),
  policy: z.looseObject({ uri: z.string().min(1) }),
  verificationResult: z.enum(["PASSED", "FAILED"]),
  verifiedLevels: z.array(z.string()),
});

/** The digest a summary's `resourceUri` names (`pkg:oci/…@sha256:…`, or `…@sha256%3A…`); undefined when none. */
export function resourceDigest(uri: string): string | undefined {
  const match = /@sha256(?::|%3A)([0-9a-f]{64})(?=$|[?#])/i.exec(uri);
  return match ? `sha256:${match[1]!.toLowerCase()}` : undefined;
}

// A verifier's clock may run a little ahead; a summary dated further ahead is refused (it would
// otherwise stay fresh for longer than maxAge).
const FUTURE_SKEW_MS = 5 * 60_000;

/** The checks in the order a summary must pass them: a miss further down this list is a closer miss. */
const STAGES = [
  "summary_malformed",
  "summary_not_passed",
  "summary_verifier_mismatch",
  "summary_digest_mismatch",
  "summary_environment_mismatch",
  "summary_expired",
] as const satisfies readonly (CandidateReason & CheckReason)[];

function qualify(a: Assessment, rule: SummaryRule, digest: string, now: Date): Reject | undefined {
  const statement = a.content?.kind === "statement" ? a.content.statement : undefined;
  if (statement?.predicateType !== VSA_PREDICATE_TYPE)
    return { reason: "not_a_summary", message: `predicate type ${statement?.predicateType ?? "(none)"}` };
  const parsed = predicateSchema.safeParse(statement.predicate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      reason: "summary_malformed",
      message: `not a SLSA verification summary v1: ${issue?.path.join(".") || "predicate"}: ${issue?.message ?? "bad shape"}`,
    };
  }
  const p = parsed.data;
  if (p.verificationResult !== "PASSED")
    return { reason: "summary_not_passed", message: `its verificationResult is ${p.verificationResult}` };
  if (trimSlashes(p.verifier.id) !== rule.verifierId) {
    return {
      reason: "summary_verifier_mismatch",
      message: `verifier ${p.verifier.id.slice(0, 200)}, but ${rule.authority} signs for ${rule.verifierId}`,
    };
  }
  const about = resourceDigest(p.resourceUri);
  if (about !== digest) {
    return {
      reason: "summary_digest_mismatch",
      message: `its resourceUri names ${about ?? "no digest"}, not ${digest}`,
    };
  }
  const expected = summaryPolicyUri(rule.verifierId, rule.from);
  if (p.policy.uri !== expected) {
    return {
      reason: "summary_environment_mismatch",
      message: `its policy is ${p.policy.uri.slice(0, 200)}, not ${expected}`,
    };
  }
  const at = Date.parse(p.timeVerified);
  if (at > now.getTime() + FUTURE_SKEW_MS)
    return { reason: "summary_expired", message: `timeVerified ${p.timeVerified} is in the future` };
  if (now.getTime() - at > rule.maxAgeMs) {
    return {
      reason: "summary_expired",
      message: `verified ${new Date(at).toISOString()}, older than the ${Math.round(rule.maxAgeMs / 1000)} s allowed`,
    };
  }
  return undefined;
}

/** How far a summary got: the index of its miss in {@link STAGES}; -1 for one not trusted or not a summary. */
function stageOf(o: CandidateOutcome): number {
  // Signed by a trusted key, but its statement is about another digest.
  if (o.reason === "subject_mismatch" && o.predicateType === VSA_PREDICATE_TYPE)
    return STAGES.indexOf("summary_digest_mismatch");
  return (STAGES as readonly string[]).indexOf(o.reason);
}

function looksLikeSummary(a: Assessment): boolean {
  const signed = a.content?.kind === "statement" ? a.content.statement.predicateType : undefined;
  const claimed = a.candidate.readable ? a.candidate.claimedPredicateType : undefined;
  return signed === VSA_PREDICATE_TYPE || claimed === VSA_PREDICATE_TYPE;
}

/**
 * Summary: a SLSA verification summary of this digest, signed by `rule.authority`, whose
 * `verifier.id` is that authority's verifier id, whose policy names `rule.from`, that PASSED, and
 * that is at most `rule.maxAgeMs` old. When none qualifies, the reason is the closest miss: expired,
 * then another environment, another digest, another verifier, not passed, malformed; a summary signed
 * by no trusted key is `summary_untrusted`, and none at all `no_summary`.
 */
export function summaryCheck(assessments: Assessment[], rule: SummaryRule, digest: string, now: Date): Check {
  const judged = judge(assessments, "attestation", [rule.authority], (a) => qualify(a, rule, digest, now));
  const closed = failClosed("summary", judged, "attestation");
  if (closed) return closed;
  if (judged.accepted.size > 0) {
    return result(
      "summary",
      true,
      "verified",
      `a verification summary of ${rule.from} by ${rule.authority} (${rule.verifierId})`,
      judged,
    );
  }
  if (!assessments.some(looksLikeSummary))
    return result("summary", false, "no_summary", "no verification summary found for this digest", judged);
  const closest = Math.max(-1, ...judged.outcomes.map(stageOf));
  if (closest < 0) {
    return result(
      "summary",
      false,
      "summary_untrusted",
      `no verification summary signed by ${rule.authority}`,
      judged,
    );
  }
  const reason = STAGES[closest]!;
  const miss = judged.outcomes.find((o) => stageOf(o) === closest);
  return result(
    "summary",
    false,
    reason,
    `no usable summary of ${rule.from}: ${miss?.message ?? reason}`,
    judged,
  );
}
