import { bindToApp, type RepositoryScope } from "./binding.ts";
import type { Candidate } from "./candidate.ts";
import { bestRefusal, type CryptoVerdict, verifyCandidate } from "./entity.ts";
import { COSIGN_SIGN_PREDICATE } from "./media.ts";
import type { CandidateOutcome, CandidateReason } from "./report.ts";
import { type SignedContent, signedContent, statementCovers } from "./statement.ts";
import type { TrustContext } from "./trust-context.ts";

/** What a candidate is for: decided by its signed content once trusted, else by its format and hint. */
export type Role = "signature" | "attestation";

/** A candidate after cryptography and content checks; the policy checks read these. */
export interface Assessment {
  candidate: Candidate;
  role: Role;
  verdict?: CryptoVerdict;
  content?: SignedContent;
  /** Set when the candidate is rejected whatever the check (unreadable, untrusted, wrong subject…). */
  failure?: { reason: CandidateReason; message: string };
}

function roleOf(candidate: Candidate, content: SignedContent | undefined): Role {
  if (content?.kind === "statement") {
    return content.statement.predicateType === COSIGN_SIGN_PREDICATE ? "signature" : "attestation";
  }
  if (content) return "signature";
  if (candidate.format === "cosign-signature") return "signature";
  if (candidate.format === "cosign-attestation") return "attestation";
  if (candidate.readable && candidate.bundle.content.$case === "messageSignature") return "signature";
  return candidate.readable && candidate.claimedPredicateType === COSIGN_SIGN_PREDICATE
    ? "signature"
    : "attestation";
}

function contentFailure(a: { content: SignedContent; candidate: Candidate }, digest: string) {
  const { content, candidate } = a;
  switch (content.kind) {
    case "unreadable":
      return { reason: "unreadable" as const, message: content.message };
    case "simple-signing":
    case "message-digest": {
      const signed = content.kind === "simple-signing" ? content.manifestDigest : content.digest;
      return signed === digest
        ? undefined
        : { reason: "payload_digest_mismatch" as const, message: `it signs ${signed}, not ${digest}` };
    }
    case "statement": {
      const { statement } = content;
      if (!statementCovers(statement, digest)) {
        const subjects = statement.subject.flatMap((s) =>
          Object.entries(s.digest).map(([k, v]) => `${k}:${v}`),
        );
        return {
          reason: "subject_mismatch" as const,
          message: `its subject is ${subjects.join(", ")}, not ${digest}`,
        };
      }
      const claimed = candidate.readable ? candidate.claimedPredicateType : undefined;
      if (claimed !== undefined && claimed !== statement.predicateType) {
        return {
          reason: "predicate_type_annotation_mismatch" as const,
          message: `its unsigned annotation says ${claimed} but the signed statement is ${statement.predicateType}`,
        };
      }
      return undefined;
    }
  }
}

/**
 * Assesses every candidate once: its cryptography against all the authorities the policy names,
 * then — only if some authority vouched for it — what its signed content says about `digest`.
 * Unsigned hints are compared with signed content, never used in its place. Ferry's own signatures
 * must also name a repository of the app that `scope.repository` belongs to (`binding.ts`).
 */
export function assess(
  candidates: Candidate[],
  digest: string,
  authorities: string[],
  ctx: TrustContext,
  scope?: RepositoryScope,
): Assessment[] {
  return candidates.map((candidate): Assessment => {
    if (!candidate.readable) {
      return {
        candidate,
        role: roleOf(candidate, undefined),
        failure: { reason: candidate.reason, message: candidate.message },
      };
    }
    const verdict = verifyCandidate(candidate, authorities, ctx);
    if (verdict.vouches.length === 0) {
      const best = bestRefusal(verdict.refusals);
      return {
        candidate,
        role: roleOf(candidate, undefined),
        verdict,
        failure: best ?? { reason: "untrusted_key", message: "no authority is configured for this check" },
      };
    }
    const content = signedContent(candidate);
    const role = roleOf(candidate, content);
    const failure = contentFailure({ content, candidate }, digest);
    if (failure) return { candidate, role, verdict, content, failure };
    const bound = bindToApp(verdict, content, digest, ctx, scope);
    if (bound.vouches.length === 0) {
      const refusal = bound.refusals.find((r) => r.reason === "repository_not_in_app")!;
      const failure = { reason: refusal.reason, message: refusal.message };
      return { candidate, role, verdict: bound, content, failure };
    }
    return { candidate, role, verdict: bound, content };
  });
}

/** A candidate as it appears in the report. */
export function outcome(
  a: Assessment,
  reason: CandidateReason,
  message: string,
  authorities?: string[],
): CandidateOutcome {
  return {
    source: a.candidate.source,
    digest: a.candidate.digest,
    ...(a.candidate.manifestDigest ? { manifestDigest: a.candidate.manifestDigest } : {}),
    reason,
    message,
    ...(authorities && authorities.length > 0 ? { authorities } : {}),
    ...(a.content?.kind === "statement" ? { predicateType: a.content.statement.predicateType } : {}),
  };
}
