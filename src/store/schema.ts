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

/** What one signing did: wrote the item now, or found the same one already stored. */
export type SigningOutcome = "created" | "existing";

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
  format: "cosign-legacy" | "sigstore-bundle";
  /** `created`, or `existing` when the same signature was already there (idempotent repeat). */
  status: SigningOutcome;
  key_id: string;
  /** The tag or referrer digest where it is stored. */
  location: string;
}

/**
 * The `promotions` table: one row per promotion request (src/promotion/store.ts). Gates, steps,
 * result and verification are JSON text; times are epoch milliseconds. `version` grows with every
 * change (compare-and-swap); `next_check_at` is when the worker should look at it again (null once
 * it is finished).
 */
export interface PromotionsTable {
  id: string;
  app: string;
  environment: string;
  digest: string;
  from_environment: string | null;
  source_repository: string;
  target_repository: string;
  state: string;
  version: number;
  /** 1 for a rollback, else 0. */
  rollback: number;
  reason: string | null;
  requested_by: string;
  request_hash: string;
  created_at: number;
  updated_at: number;
  next_check_at: number | null;
  gates: string;
  steps: string;
  result: string | null;
  verification: string | null;
}

/** `Idempotency-Key`s of promotion requests: SHA-256 of (issuer, subject, key), never the key itself. */
export interface PromotionIdempotencyTable {
  key_sha256: string;
  promotion_id: string;
  request_hash: string;
  created_at: number;
}

/** Each digest that became current in an environment, once per promotion. */
export interface EnvironmentHistoryTable {
  id: string;
  app: string;
  environment: string;
  digest: string;
  promotion_id: string;
  at: number;
  rollback: number;
  reason: string | null;
}

/** The digest current in each (app, environment), and the promotion that put it there. */
export interface EnvironmentCurrentTable {
  app: string;
  environment: string;
  digest: string;
  since: number;
  promotion_id: string;
}

/** Every table Ferry stores, for kysely's type checking. Later features add theirs here. */
export interface Database {
  leases: LeasesTable;
  token_replay: TokenReplayTable;
  token_exchanges: TokenExchangesTable;
  signings: SigningsTable;
  promotions: PromotionsTable;
  promotion_idempotency: PromotionIdempotencyTable;
  environment_history: EnvironmentHistoryTable;
  environment_current: EnvironmentCurrentTable;
}
