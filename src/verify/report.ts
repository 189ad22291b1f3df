/**
 * The verification report: every check, passed or failed, with a stable reason code. Reason codes
 * are a closed list (callers and dashboards match on them); messages and details are for people.
 */

/** Why a check passed or failed. Stable: add codes, never rename them. */
export const CHECK_REASONS = [
  // passed
  "verified",
  "not_required",
  // signature / attestation discovery
  "no_signatures_found",
  "no_trusted_signature",
  "signature_count_not_met",
  "no_attestations_found",
  "no_sbom_attestation",
  "no_trusted_sbom",
  "no_provenance_attestation",
  "no_trusted_provenance",
  "platform_unsigned",
  "unreadable_evidence",
  // operational, all fail closed
  "subject_not_found",
  "fetch_failed",
  "timeout",
  "trust_root_unavailable",
  // a `trust.limits` cap, decided before the excess objects are read (limits.ts)
  "too_many_candidates",
  "too_many_layers",
  "too_many_platforms",
  "evidence_too_large",
  // an upstream SLSA verification summary (`require.summary`, summary.ts), from the closest miss
  "no_summary",
  "summary_untrusted",
  "summary_malformed",
  "summary_not_passed",
  "summary_verifier_mismatch",
  "summary_digest_mismatch",
  "summary_environment_mismatch",
  "summary_expired",
] as const;
export type CheckReason = (typeof CHECK_REASONS)[number];

/** Why one candidate (a signature or attestation found on the digest) was not accepted. */
export const CANDIDATE_REASONS = [
  "accepted",
  "unreadable",
  "content_digest_mismatch",
  "signature_invalid",
  "untrusted_key",
  "certificate_untrusted",
  "no_timestamp",
  "tlog_invalid",
  // a legacy attestation's Rekor intoto v0.0.1 entry, verified by Ferry (intoto-v001.ts)
  "tlog_set_invalid",
  "tlog_entry_malformed",
  "tlog_envelope_mismatch",
  "tlog_certificate_mismatch",
  "tlog_time_outside_certificate",
  "issuer_mismatch",
  "identity_mismatch",
  "extension_mismatch",
  "payload_digest_mismatch",
  "subject_mismatch",
  "predicate_type_annotation_mismatch",
  "not_an_sbom",
  "not_provenance",
  "sbom_too_old",
  "sbom_age_unknown",
  "builder_mismatch",
  "source_repository_mismatch",
  "source_ref_mismatch",
  "certificate_source_mismatch",
  "authority_not_allowed",
  "trust_root_unavailable",
  // signed with Ferry's key for a repository of another app (or of no app)
  "repository_not_in_app",
  // a signed attestation that the summary check does not count (summary.ts)
  "not_a_summary",
  "summary_malformed",
  "summary_not_passed",
  "summary_verifier_mismatch",
  "summary_digest_mismatch",
  "summary_environment_mismatch",
  "summary_expired",
] as const;
export type CandidateReason = (typeof CANDIDATE_REASONS)[number];

/** One signature or attestation as seen by a check, and what became of it. */
export interface CandidateOutcome {
  /** Where it came from, e.g. `tag sha256-….sig layer 0` or `referrer sha256:…`. */
  source: string;
  /** Digest of the signature or attestation object (layer or bundle blob). */
  digest: string;
  /** Digest of the manifest holding it (the `.sig` / `.att` manifest, or the referrer). */
  manifestDigest?: string;
  reason: CandidateReason;
  message: string;
  /** The authorities that vouched for it (when its cryptography verified). */
  authorities?: string[];
  predicateType?: string;
  /** An accepted SLSA provenance's builder id (what a verification summary's level is read from). */
  builderId?: string;
}

/** One check of the report. */
export interface Check {
  name: string;
  passed: boolean;
  reason: CheckReason;
  message: string;
  details?: { candidates?: CandidateOutcome[]; [key: string]: unknown };
}

/** The answer to "may this digest enter this environment?". */
export interface VerificationReport {
  allowed: boolean;
  digest: string;
  environment: string;
  checks: Check[];
  /** True when the decision was answered from the verification cache. */
  cached: boolean;
}

/** A report whose checks decide `allowed`: every check must pass, and there must be at least one. */
export function decide(digest: string, environment: string, checks: Check[]): VerificationReport {
  return {
    allowed: checks.length > 0 && checks.every((c) => c.passed),
    digest,
    environment,
    checks,
    cached: false,
  };
}
