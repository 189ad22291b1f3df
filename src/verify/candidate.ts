import type { Bundle } from "@sigstore/bundle";
import type { LegacyIntotoEntry } from "./intoto-v001.ts";

/** How a candidate was stored. */
export type CandidateFormat = "cosign-signature" | "cosign-attestation" | "sigstore-bundle";

/**
 * A signed entity found for a digest, before any trust decision: a legacy cosign layer converted to
 * a Sigstore bundle, or a Sigstore bundle attached as a referrer. `unreadable` when it could not be
 * read or parsed (it then fails closed, with its reason, wherever it would have counted).
 */
export type Candidate = ReadableCandidate | UnreadableCandidate;

interface CandidateBase {
  format: CandidateFormat;
  /** Where it came from, for the report. */
  source: string;
  /** Digest of the object holding the signature (layer or bundle blob). */
  digest: string;
  /**
   * Digest of the manifest listing it (the `.sig` / `.att` manifest, or the referrer): part of the
   * decision cache key, since it covers the layer's annotations (signature, certificate, bundle),
   * which the layer digest does not. Discovery always sets it; a bundle read from a file has none.
   */
  manifestDigest?: string;
}

/** A candidate whose bytes were read and parsed into a bundle. */
export interface ReadableCandidate extends CandidateBase {
  readable: true;
  bundle: Bundle;
  /**
   * For message signatures: the signed bytes (the simple-signing payload, or the subject manifest
   * for a bundle that signs the manifest itself). Absent for DSSE, whose payload is in the envelope.
   */
  artifact?: Buffer;
  /** The unsigned `predicateType` annotation, if any: compared with the signed one, never trusted. */
  claimedPredicateType?: string;
  /**
   * For a legacy `.att` layer logged as a Rekor `intoto` v0.0.1 entry: the evidence Ferry verifies
   * itself (`intoto-v001.ts`), since `@sigstore/verify` refuses that entry version.
   */
  legacyIntoto?: LegacyIntotoEntry;
}

/** A candidate that could not be read; it counts as a failure, never as absent. */
export interface UnreadableCandidate extends CandidateBase {
  readable: false;
  reason: "unreadable" | "content_digest_mismatch";
  message: string;
}
