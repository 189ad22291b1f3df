import { PolicyError, type Signer, toSignedEntity, VerificationError } from "@sigstore/verify";
import type { Authority, KeylessAuthority } from "./authorities.ts";
import type { ReadableCandidate } from "./candidate.ts";
import { type CertificateIdentity, certificateIdentity } from "./identity.ts";
import { checkIntotoV001 } from "./intoto-v001.ts";
import type { CandidateReason } from "./report.ts";
import type { TrustContext } from "./trust-context.ts";

/** An authority that vouched for a candidate. */
export interface Vouch {
  authority: string;
  identity?: CertificateIdentity;
}

/** Why one authority did not vouch for a candidate. */
export interface Refusal {
  authority: string;
  reason: CandidateReason;
  message: string;
}

/** The cryptographic verdict on one candidate, against every authority considered. */
export interface CryptoVerdict {
  vouches: Vouch[];
  refusals: Refusal[];
}

// How far verification got before it failed: the refusal that got furthest explains the candidate best.
const PROGRESS: Record<string, number> = {
  untrusted_key: 1,
  trust_root_unavailable: 1,
  certificate_untrusted: 2,
  no_timestamp: 2,
  tlog_invalid: 3,
  tlog_set_invalid: 3,
  tlog_entry_malformed: 3,
  tlog_envelope_mismatch: 3,
  tlog_certificate_mismatch: 3,
  tlog_time_outside_certificate: 3,
  signature_invalid: 4,
  issuer_mismatch: 5,
  identity_mismatch: 6,
  extension_mismatch: 7,
  repository_not_in_app: 8,
};

/** The refusal that best explains why a candidate is not trusted. */
export function bestRefusal(refusals: Refusal[]): Refusal | undefined {
  return [...refusals].sort((a, b) => (PROGRESS[b.reason] ?? 0) - (PROGRESS[a.reason] ?? 0))[0];
}

function reasonOf(err: unknown, keyed: boolean): { reason: CandidateReason; message: string } {
  if (err instanceof VerificationError) {
    switch (err.code) {
      case "SIGNATURE_ERROR":
        return keyed
          ? { reason: "untrusted_key", message: "the signature does not verify with this key" }
          : { reason: "signature_invalid", message: "the signature does not match the signed content" };
      case "TIMESTAMP_ERROR":
        return {
          reason: "no_timestamp",
          message: `no verified timestamp for the certificate: ${err.message}`,
        };
      case "CERTIFICATE_ERROR":
        return { reason: "certificate_untrusted", message: `certificate not trusted: ${err.message}` };
      case "PUBLIC_KEY_ERROR":
        return { reason: "untrusted_key", message: err.message };
      default:
        if (err.code.startsWith("TLOG"))
          return { reason: "tlog_invalid", message: `transparency log: ${err.message}` };
        return { reason: "signature_invalid", message: err.message };
    }
  }
  if (err instanceof PolicyError) return { reason: "identity_mismatch", message: err.message };
  return { reason: "signature_invalid", message: err instanceof Error ? err.message : String(err) };
}

function checkIdentity(authority: KeylessAuthority, identity: CertificateIdentity): Refusal | undefined {
  const refuse = (reason: CandidateReason, message: string) => ({
    authority: authority.name,
    reason,
    message,
  });
  if (identity.issuer !== authority.issuer) {
    return refuse(
      "issuer_mismatch",
      `certificate issuer ${identity.issuer ?? "(none)"}, expected ${authority.issuer}`,
    );
  }
  if (identity.subject === undefined || !authority.matchesSubject(identity.subject)) {
    return refuse(
      "identity_mismatch",
      `certificate subject ${identity.subject ?? "(none)"}, expected ${authority.subjectText}`,
    );
  }
  for (const [name, expected] of Object.entries(authority.extensions)) {
    const actual = identity.extensions[name as keyof typeof identity.extensions];
    if (actual !== expected) {
      return refuse(
        "extension_mismatch",
        `certificate ${name} is ${actual ?? "(absent)"}, expected ${expected}`,
      );
    }
  }
  return undefined;
}

type KeylessResult = { signer?: Signer; refusal?: { reason: CandidateReason; message: string } };

/**
 * Verifies a certificate-signed entity against one trusted root: its CAs, logs and TSAs only. A
 * root that did not load fails closed as `trust_root_unavailable`.
 */
function verifyAgainstRoot(
  candidate: ReadableCandidate,
  entity: ReturnType<typeof toSignedEntity>,
  rootName: string,
  ctx: TrustContext,
): KeylessResult {
  const root = ctx.keyless.find((k) => k.root === rootName);
  if (!root) {
    return {
      refusal: {
        reason: "trust_root_unavailable",
        message: ctx.rootProblem ?? `trusted root ${rootName} is not loaded`,
      },
    };
  }
  try {
    let target = entity;
    // An intoto v0.0.1 entry, which the library refuses, is verified by Ferry against this root's
    // logs; the library then checks the rest of the same entity without it.
    if (candidate.legacyIntoto) {
      const checked = checkIntotoV001(candidate.legacyIntoto, candidate.bundle, entity, root.tlogs);
      if ("failure" in checked) {
        return { refusal: { ...checked.failure, message: `${checked.failure.message} (root ${rootName})` } };
      }
      target = checked.entity;
    }
    return { signer: root.verifier.verify(target) };
  } catch (err) {
    const r = reasonOf(err, false);
    return { refusal: { reason: r.reason, message: `${r.message} (root ${rootName})` } };
  }
}

/**
 * Verifies one candidate's cryptography against the named authorities: signature, certificate
 * chain, timestamps and log entries through `@sigstore/verify`, then (for certificates) the
 * identity, matched here so that regexes are anchored and every mismatch is named.
 */
export function verifyCandidate(
  candidate: ReadableCandidate,
  names: Iterable<string>,
  ctx: TrustContext,
): CryptoVerdict {
  const verdict: CryptoVerdict = { vouches: [], refusals: [] };
  let entity: ReturnType<typeof toSignedEntity>;
  try {
    entity = toSignedEntity(candidate.bundle, candidate.artifact);
  } catch (err) {
    for (const name of names) verdict.refusals.push({ authority: name, ...reasonOf(err, false) });
    return verdict;
  }
  const certified = entity.key.$case === "certificate";
  // A certificate is verified once per root, whatever the number of keyless authorities.
  const byRoot = new Map<string, KeylessResult>();
  const keylessSigner = (authority: KeylessAuthority): KeylessResult => {
    const only = ctx.keyless.length === 1 ? ctx.keyless[0]!.root : undefined;
    const rootName = authority.root ?? only;
    if (rootName === undefined) {
      if (ctx.rootProblem) return { refusal: { reason: "trust_root_unavailable", message: ctx.rootProblem } };
      return {
        refusal: {
          reason: "certificate_untrusted",
          message:
            ctx.keyless.length === 0
              ? "no trusted root is configured"
              : "the authority names no trusted root, and several are configured",
        },
      };
    }
    const known = byRoot.get(rootName);
    if (known) return known;
    const result = verifyAgainstRoot(candidate, entity, rootName, ctx);
    byRoot.set(rootName, result);
    return result;
  };

  for (const name of names) {
    const authority: Authority | undefined = ctx.authorities.get(name);
    if (!authority) continue;
    if (authority.kind === "key") {
      if (certified) {
        verdict.refusals.push({
          authority: name,
          reason: "untrusted_key",
          message: "signed with a certificate, not this key",
        });
        continue;
      }
      try {
        ctx.keys.get(name)?.verify(entity);
        verdict.vouches.push({ authority: name });
      } catch (err) {
        verdict.refusals.push({ authority: name, ...reasonOf(err, true) });
      }
      continue;
    }
    if (!certified) {
      verdict.refusals.push({
        authority: name,
        reason: "untrusted_key",
        message: "signed with a key, not a certificate",
      });
      continue;
    }
    const { signer, refusal } = keylessSigner(authority);
    if (!signer) {
      verdict.refusals.push({ ...refusal!, authority: name });
      continue;
    }
    const identity = certificateIdentity(signer);
    const mismatch = identity ? checkIdentity(authority, identity) : undefined;
    if (mismatch || !identity) {
      verdict.refusals.push(
        mismatch ?? { authority: name, reason: "identity_mismatch", message: "no identity" },
      );
    } else verdict.vouches.push({ authority: name, identity });
  }
  return verdict;
}
