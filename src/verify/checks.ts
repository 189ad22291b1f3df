import { type Assessment, outcome, type Role } from "./assess.ts";
import { bestRefusal, type Vouch } from "./entity.ts";
import { isSbomPredicate, slsaVersion } from "./media.ts";
import { normaliseRepository, provenanceFacts } from "./provenance.ts";
import type { CandidateOutcome, CandidateReason, Check, CheckReason } from "./report.ts";
import { sbomFacts } from "./sbom.ts";

/** A requirement on signatures. */
export interface SignatureRule {
  authorities: string[];
  /** How many distinct authorities must have signed (default 1: any one). */
  count: number;
}
/** A requirement on an SBOM attestation. */
export interface SbomRule {
  authorities: string[];
  maxAgeMs?: number;
}
/** A requirement on SLSA provenance. */
export interface ProvenanceRule {
  authorities: string[];
  builderId?: string;
  sourceRepository?: string;
  ref?: string;
}

/** Why a check does not count a candidate whose signature it trusts. */
export type Reject = { reason: CandidateReason; message: string };
/** What a check learnt from a candidate it counts, kept on its outcome (a provenance's builder). */
export type Accept = { extra: Pick<CandidateOutcome, "builderId"> };
/** A check's own test of a trusted candidate: a rejection, or nothing (or what it learnt) to count it. */
export type Qualify = (a: Assessment, vouches: Vouch[]) => Reject | Accept | undefined;

const UNREADABLE: CandidateReason[] = ["unreadable", "content_digest_mismatch"];

/** The candidates of one role as one check sees them. */
export interface Judged {
  outcomes: CandidateOutcome[];
  /** Authorities that vouched for at least one accepted candidate. */
  accepted: Set<string>;
  unreadable: number;
  relevant: number;
}

/** Reads every candidate of `role` with a check's authorities and its own test. */
export function judge(
  assessments: Assessment[],
  role: Role,
  authorities: string[],
  qualify: Qualify,
): Judged {
  const allowed = new Set(authorities);
  const judged: Judged = { outcomes: [], accepted: new Set(), unreadable: 0, relevant: 0 };
  for (const a of assessments) {
    if (a.role !== role) continue;
    judged.relevant++;
    if (a.failure) {
      if (UNREADABLE.includes(a.failure.reason)) judged.unreadable++;
      const own = a.verdict
        ? bestRefusal(a.verdict.refusals.filter((r) => allowed.has(r.authority)))
        : undefined;
      const failure = a.verdict && a.verdict.vouches.length === 0 && own ? own : a.failure;
      judged.outcomes.push(outcome(a, failure.reason, failure.message));
      continue;
    }
    const vouches = (a.verdict?.vouches ?? []).filter((v) => allowed.has(v.authority));
    if (vouches.length === 0) {
      const own = bestRefusal((a.verdict?.refusals ?? []).filter((r) => allowed.has(r.authority)));
      const others = (a.verdict?.vouches ?? []).map((v) => v.authority);
      judged.outcomes.push(
        outcome(
          a,
          "authority_not_allowed",
          `trusted only by ${others.join(", ")}, which this check does not accept${own ? ` (${own.message})` : ""}`,
        ),
      );
      continue;
    }
    const verdict = qualify(a, vouches);
    if (verdict !== undefined && "reason" in verdict) {
      const rejected = verdict;
      judged.outcomes.push(
        outcome(
          a,
          rejected.reason,
          rejected.message,
          vouches.map((v) => v.authority),
        ),
      );
      continue;
    }
    for (const v of vouches) judged.accepted.add(v.authority);
    judged.outcomes.push({
      ...outcome(
        a,
        "accepted",
        "verified",
        vouches.map((v) => v.authority),
      ),
      ...verdict?.extra,
    });
  }
  return judged;
}

/** A check with its candidates' outcomes. */
export function result(
  name: string,
  passed: boolean,
  reason: CheckReason,
  message: string,
  judged: Judged,
  extra = {},
): Check {
  return { name, passed, reason, message, details: { candidates: judged.outcomes, ...extra } };
}

/**
 * Evidence that could not be read fails its check closed, whatever else was accepted: what it
 * would have said is unknown.
 */
export function failClosed(
  name: string,
  judged: Judged,
  evidence: "signature" | "attestation",
): Check | undefined {
  if (judged.unreadable > 0) {
    return result(
      name,
      false,
      "unreadable_evidence",
      `${judged.unreadable} ${evidence}(s) could not be read; failing closed`,
      judged,
    );
  }
  return undefined;
}

/** Signatures: at least `count` of the named authorities signed this digest. */
export function signatureCheck(assessments: Assessment[], rule: SignatureRule, name = "signature"): Check {
  const judged = judge(assessments, "signature", rule.authorities, () => undefined);
  const need = rule.count;
  const got = judged.accepted.size;
  const closed = failClosed(name, judged, "signature");
  if (closed) return closed;
  if (got >= need)
    return result(name, true, "verified", `signed by ${[...judged.accepted].join(", ")}`, judged);
  if (judged.relevant === 0)
    return result(name, false, "no_signatures_found", "no signatures found for this digest", judged);
  if (got > 0) {
    return result(
      name,
      false,
      "signature_count_not_met",
      `signed by ${got} of the ${need} authorities required`,
      judged,
    );
  }
  return result(
    name,
    false,
    "no_trusted_signature",
    `${judged.relevant} signature(s) found, none by ${rule.authorities.join(" or ")}`,
    judged,
  );
}

function signedPredicate(a: Assessment): string | undefined {
  return a.content?.kind === "statement" ? a.content.statement.predicateType : undefined;
}

function looksLike(assessments: Assessment[], test: (type: string) => boolean): boolean {
  return assessments.some((a) => {
    const claimed = a.candidate.readable ? a.candidate.claimedPredicateType : undefined;
    const signed = signedPredicate(a);
    return (signed !== undefined && test(signed)) || (claimed !== undefined && test(claimed));
  });
}

function attestationCheck(
  name: string,
  assessments: Assessment[],
  authorities: string[],
  kind: { none: CheckReason; untrusted: CheckReason; is: (type: string) => boolean; label: string },
  qualify: Qualify,
): Check {
  const judged = judge(assessments, "attestation", authorities, qualify);
  const closed = failClosed(name, judged, "attestation");
  if (closed) return closed;
  if (judged.accepted.size > 0)
    return result(
      name,
      true,
      "verified",
      `${kind.label} attested by ${[...judged.accepted].join(", ")}`,
      judged,
    );
  if (judged.relevant === 0)
    return result(name, false, "no_attestations_found", "no attestations found for this digest", judged);
  if (!looksLike(assessments, kind.is)) {
    return result(
      name,
      false,
      kind.none,
      `${judged.relevant} attestation(s) found, none of them ${kind.label}`,
      judged,
    );
  }
  return result(name, false, kind.untrusted, `no ${kind.label} attestation passed`, judged);
}

/** SBOM: an SPDX or CycloneDX attestation about this digest, by a named authority, recent enough. */
export function sbomCheck(assessments: Assessment[], rule: SbomRule, now: Date): Check {
  return attestationCheck(
    "sbom",
    assessments,
    rule.authorities,
    {
      none: "no_sbom_attestation",
      untrusted: "no_trusted_sbom",
      is: (t) => isSbomPredicate(t) !== undefined,
      label: "an SBOM",
    },
    (a) => {
      const type = signedPredicate(a) ?? "";
      if (!isSbomPredicate(type)) return { reason: "not_an_sbom", message: `predicate type ${type}` };
      const facts = a.content?.kind === "statement" ? sbomFacts(a.content.statement.predicate) : undefined;
      if (!facts)
        return {
          reason: "not_an_sbom",
          message: `predicate type ${type}, but not an SPDX or CycloneDX document`,
        };
      if (rule.maxAgeMs === undefined) return undefined;
      if (!facts.created)
        return {
          reason: "sbom_age_unknown",
          message: "the SBOM states no creation time, and a maximum age is required",
        };
      const age = now.getTime() - facts.created.getTime();
      if (age > rule.maxAgeMs) {
        return {
          reason: "sbom_too_old",
          message: `created ${facts.created.toISOString()}, older than the ${Math.round(rule.maxAgeMs / 1000)} s allowed`,
        };
      }
      return undefined;
    },
  );
}

/** Provenance: SLSA v0.2/v1 from the expected builder and source, cross-checked with a keyless signer's certificate. */
export function provenanceCheck(assessments: Assessment[], rule: ProvenanceRule): Check {
  return attestationCheck(
    "provenance",
    assessments,
    rule.authorities,
    {
      none: "no_provenance_attestation",
      untrusted: "no_trusted_provenance",
      is: (t) => slsaVersion(t) !== undefined,
      label: "SLSA provenance",
    },
    (a, vouches) => {
      const type = signedPredicate(a) ?? "";
      const version = slsaVersion(type);
      if (!version || a.content?.kind !== "statement")
        return { reason: "not_provenance", message: `predicate type ${type}` };
      let facts: ReturnType<typeof provenanceFacts>;
      try {
        facts = provenanceFacts(version, a.content.statement.predicate);
      } catch {
        return {
          reason: "not_provenance",
          message: `a ${type} predicate without the fields SLSA ${version} requires`,
        };
      }
      if (rule.builderId !== undefined && facts.builderId !== rule.builderId) {
        return {
          reason: "builder_mismatch",
          message: `builder ${facts.builderId ?? "(none)"}, expected ${rule.builderId}`,
        };
      }
      if (
        rule.sourceRepository !== undefined &&
        facts.sourceRepository !== normaliseRepository(rule.sourceRepository)
      ) {
        return {
          reason: "source_repository_mismatch",
          message: `source ${facts.sourceRepository ?? "(none)"}, expected ${rule.sourceRepository}`,
        };
      }
      if (rule.ref !== undefined && facts.ref !== rule.ref) {
        return {
          reason: "source_ref_mismatch",
          message: `ref ${facts.ref ?? "(none)"}, expected ${rule.ref}`,
        };
      }
      // A keyless signer's certificate says which repository and ref ran the build: provenance that
      // claims another one was written by someone other than the build it describes.
      for (const v of vouches) {
        const ext = v.identity?.extensions;
        if (!ext) continue;
        if (
          ext.sourceRepositoryUri &&
          facts.sourceRepository !== normaliseRepository(ext.sourceRepositoryUri)
        ) {
          return {
            reason: "certificate_source_mismatch",
            message: `provenance source ${facts.sourceRepository ?? "(none)"}, signer certificate ${ext.sourceRepositoryUri}`,
          };
        }
        if (ext.sourceRepositoryRef && facts.ref !== undefined && facts.ref !== ext.sourceRepositoryRef) {
          return {
            reason: "certificate_source_mismatch",
            message: `provenance ref ${facts.ref}, signer certificate ${ext.sourceRepositoryRef}`,
          };
        }
      }
      return facts.builderId === undefined ? undefined : { extra: { builderId: facts.builderId } };
    },
  );
}
