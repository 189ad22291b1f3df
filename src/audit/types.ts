/** The audit log's vocabulary: entry types, entries, checkpoints (docs/evidence.md, "Audit log"). */

/** Entry types of the service's own decisions: token exchanges, signings, verifications, starts. */
export const ACTIVE_ENTRY_TYPES = [
  "token_exchange",
  "signing",
  "verification",
  "config_loaded",
  "checkpoint",
] as const;

/**
 * Entry types of promotions and what they lead to (src/audit/promotion-entries.ts derives them from
 * each promotion change; `notification_delivery` comes from the delivery worker). Once reserved,
 * now written; the name is kept for the readers that import it.
 */
export const RESERVED_ENTRY_TYPES = [
  "promotion_requested",
  "promotion_state",
  "gate_result",
  "approval",
  "rejection",
  "break_glass",
  "review",
  "gitops_commit",
  "notification_delivery",
  "verification_summary",
] as const;

/** The closed list of entry types; an entry of any other type is refused on append and on verify. */
export const ENTRY_TYPES = [...ACTIVE_ENTRY_TYPES, ...RESERVED_ENTRY_TYPES] as const;

/** One of {@link ENTRY_TYPES}. */
export type EntryType = (typeof ENTRY_TYPES)[number];

/**
 * Who acted: an identity (its issuer's URL and `sub`, a person's name when known), Ferry itself, or
 * `anonymous` when the caller's token did not verify (a refused token exchange).
 */
export type AuditActor = "ferry" | "anonymous" | { issuer: string; subject: string; name?: string };

/** A JSON value, as stored in `data` and hashed by RFC 8785. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** What a caller hands to `AuditLog.append`; Ferry adds `seq`, `at` and the hashes. */
export interface AuditInput {
  type: EntryType;
  actor: AuditActor;
  /** What it is about: a promotion id, a digest, a credential name, … */
  subject: string;
  /** The decision or result: `granted`, `refused`, `allowed`, `denied`, `created`, … */
  outcome: string;
  /** Why, as a stable reason code, when there is one. */
  reason?: string | undefined;
  /** Anything else worth proving (ids of linked records, digests, environments); JSON only. */
  data?: Record<string, unknown> | undefined;
}

/**
 * One entry of the chain exactly as stored and exported (one JSON line of `GET /v1/audit`). `hash`
 * is SHA-256 hex over the bytes of `prev_hash` (its 64 hex characters, ASCII) followed by the RFC
 * 8785 canonical JSON of every other field of the entry; entry 1's `prev_hash` is 64 zeros.
 */
export interface AuditEntry {
  seq: number;
  /** Epoch milliseconds, by the database's clock. */
  at: number;
  type: EntryType;
  actor: AuditActor;
  subject: string;
  outcome: string;
  reason: string | null;
  data: { [key: string]: Json };
  prev_hash: string;
  hash: string;
}

/** The signed statement of a checkpoint: the chain had `size` entries, the last one hashing to `head`. */
export interface CheckpointBody {
  /** Who signs: `server.publicUrl`, else the listen URL. */
  origin: string;
  size: number;
  head: string;
  /** Epoch milliseconds, by the database's clock. */
  at: number;
}

/**
 * A stored checkpoint: `body` is the exact signed bytes (RFC 8785 canonical JSON of a
 * {@link CheckpointBody}) as a string; `signature` is base64 ECDSA-P256-SHA256 (ASN.1 DER) over them,
 * the form `cosign verify-blob --key` checks; `keyId` is SHA-256 of the signer's DER public key.
 */
export interface SignedCheckpoint {
  checkpoint: CheckpointBody;
  body: string;
  signature: string;
  keyId: string;
}

/** The head of the chain: its size and last hash (64 zeros and 0 when empty). */
export interface ChainHead {
  size: number;
  hash: string;
}

/** What {@link verifyChain} finds: the whole chain verifies, or the first bad sequence number and why. */
export type ChainVerdict =
  | { ok: true; size: number; head: string }
  | { ok: false; seq: number; problem: string };

/**
 * What `verifySegment` finds: entries `from..size` chain to the checkpoint's head, or the first bad
 * sequence number and why (`seq` 0: the checkpoint itself, or an empty segment).
 */
export type SegmentVerdict =
  | { ok: true; from: number; size: number; head: string }
  | { ok: false; seq: number; problem: string };

/** The `prev_hash` of entry 1. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * What signs checkpoints: Ferry's `Signer` (src/signing/signer.ts) fits it as it is; declared here so
 * the audit log does not depend on signing (signing appends to the audit log).
 */
export interface CheckpointSigner {
  /** SHA-256 hex of the signer's DER public key. */
  readonly keyId: string;
  /** ECDSA-P256-SHA256 over `data`, ASN.1 DER (the form `cosign verify-blob --key` checks). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}
