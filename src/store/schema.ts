import type { Generated } from "kysely";

/** The `leases` table: named locks with a holder, an expiry and a fencing counter. */
export interface LeasesTable {
  name: string;
  holder: string;
  /** Epoch milliseconds, by the database's clock. */
  expires_at: number;
  acquired_at: number;
  /** Incremented each time the lease changes hands; lets a writer prove it still holds the lease. */
  fence: Generated<number>;
}

/**
 * The `token_replay` table: tokens already used, so each is single-use across restarts and
 * replicas. `id` is SHA-256 of (iss, jti) (or of the token when it has no jti); rows may be deleted
 * once `expires_at` (the token's exp plus leeway, epoch ms) has passed.
 */
export interface TokenReplayTable {
  id: string;
  expires_at: number;
}

/**
 * The `token_exchanges` table: every `POST /v1/token`, granted or refused. Never the token: its
 * SHA-256. Issuer and subject are set once the token verified.
 */
export interface TokenExchangesTable {
  id: string;
  /** Epoch milliseconds. */
  at: number;
  request_id: string;
  issuer: string | null;
  subject: string | null;
  token_sha256: string | null;
  /** The requested credential (the exchange's `audience`), as asked. */
  credential: string | null;
  decision: "granted" | "refused";
  /** `granted`, or the refusal's reason code (see src/identity/errors.ts). */
  reason: string;
  /** The issued credential's id (ferry-jwt `jti`, or STS access key id) and expiry, when granted. */
  issued_id: string | null;
  expires_at: number | null;
}

/** Every table Ferry stores, for kysely's type checking. Later features add theirs here. */
/**
 * The `signings` table: every signature or attestation Ferry made or found already made, with who
 * asked. Never a token: the requester is named by issuer, subject and the token's SHA-256.
 */
export interface SigningsTable {
  id: string;
  /** Epoch milliseconds. */
  at: number;
  request_id: string;
  issuer: string;
  subject: string;
  token_sha256: string;
  app: string;
  /** `host/repository`. */
  repository: string;
  digest: string;
  /** `signature`, or the attestation's predicate type. */
  kind: string;
  /** `cosign-legacy` (the `.sig`/`.att` tag) or `sigstore-bundle` (an OCI referrer). */
  format: string;
  /** `created`, or `existing` when the same signature was already there (idempotent repeat). */
  status: string;
  key_id: string;
  /** The tag or referrer digest where it is stored. */
  location: string;
}

export interface Database {
  leases: LeasesTable;
  token_replay: TokenReplayTable;
  token_exchanges: TokenExchangesTable;
  signings: SigningsTable;
}
