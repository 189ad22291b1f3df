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
  /** JSON `{justification, at, reviewBy}` for a break-glass promotion, else null (migration 0009). */
  break_glass: string | null;
  /** JSON summary of its reviews (first reviewer, time, late, count), null until the first. */
  review: string | null;
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

/**
 * The `audit_log` table: the hash chain of every decision (src/audit/, docs/evidence.md). `actor` and
 * `data` are JSON text; `seq` runs 1..n without gaps; times are epoch ms by the database's clock.
 */
export interface AuditLogTable {
  seq: number;
  at: number;
  type: string;
  actor: string;
  subject: string;
  outcome: string;
  reason: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/** The `audit_head` table: one row (`id` 1), the chain's size and last hash; appends lock it. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/**
 * The `audit_pending` table: audit entries written in the transaction of the promotion change they
 * record, waiting for the audit log's appender to chain them (and delete them, in one transaction).
 * `kind` is `entry` (`entry` holds an `AuditInput` as JSON) or `sync` (look for the promotion's new
 * votes and reviews when chaining). Chained in (`created_at`, `promotion_id`, `version`, `ord`) order.
 */
export interface AuditPendingTable {
  id: string;
  promotion_id: string;
  /** The promotion's version after the change. */
  version: number;
  /** The entry's place among those of its change. */
  ord: number;
  created_at: number;
  kind: string;
  entry: string;
}

/** The `audit_checkpoints` table: signed checkpoints, one per chain size. */
export interface AuditCheckpointsTable {
  size: number;
  at: number;
  origin: string;
  head: string;
  /** The exact signed bytes (canonical JSON of `{origin, size, head, at}`). */
  body: string;
  /** Base64 DER ECDSA signature over `body`. */
  signature: string;
  key_id: string;
}

/**
 * The `notification_outbox` table (src/notifications/): one row per (promotion event, receiver),
 * written with the change it tells of. `state` is `pending`, `delivered` or `dead`; `id` is the
 * Standard Webhooks `webhook-id`; times are epoch ms.
 */
export interface NotificationOutboxTable {
  id: string;
  promotion_id: string;
  event: string;
  receiver: string;
  format: string;
  body: string;
  state: string;
  attempts: number;
  created_at: number;
  next_attempt_at: number;
  /** The last attempt's outcome (`http_500`, `timeout`, `redirect`, …), for operators. */
  last_outcome: string | null;
  finished_at: number | null;
}

/**
 * The `approvals` table: one vote per person and promotion (src/approvals/store.ts). `decision` is
 * `approve` or `reject`; `groups` and `links` are the voter's groups and link claims (JSON text); `policy_hash` the
 * environment's policy hash when the vote was given; times are epoch ms.
 */
export interface ApprovalsTable {
  id: string;
  promotion_id: string;
  app: string;
  digest: string;
  environment: string;
  issuer: string;
  subject: string;
  name: string | null;
  decision: string;
  comment: string | null;
  groups: string;
  links: string;
  policy_hash: string;
  created_at: number;
  updated_at: number;
}

/** A review of a break-glass promotion: one per person (issuer, subject) and promotion. */
export interface PromotionReviewsTable {
  id: string;
  promotion_id: string;
  issuer: string;
  subject: string;
  name: string | null;
  comment: string;
  at: number;
  /** 1 when given after the promotion's `reviewBy`, else 0. */
  late: number;
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
  notification_outbox: NotificationOutboxTable;
  approvals: ApprovalsTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_pending: AuditPendingTable;
  promotion_reviews: PromotionReviewsTable;
}
