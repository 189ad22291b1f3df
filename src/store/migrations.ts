import { type Kysely, type Migration, type MigrationProvider, sql } from "kysely";

/**
 * One ordered migration set for both engines. Migrations use only what SQLite and PostgreSQL both
 * understand (kysely's schema builder, `bigint` for epoch milliseconds). Never edit a released
 * migration: add a new one.
 */
export const MIGRATIONS: Record<string, Migration> = {
  "0001_leases": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("leases")
        .addColumn("name", "varchar(200)", (c) => c.primaryKey())
        .addColumn("holder", "varchar(200)", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("acquired_at", "bigint", (c) => c.notNull())
        .addColumn("fence", "bigint", (c) => c.notNull().defaultTo(sql`1`))
        .execute();
    },
  },
  "0002_token_replay": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("token_replay")
        .addColumn("id", "char(64)", (c) => c.primaryKey())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("token_replay_expires_at")
        .on("token_replay")
        .column("expires_at")
        .execute();
    },
  },
  "0003_token_exchanges": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("token_exchanges")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("request_id", "varchar(128)", (c) => c.notNull())
        .addColumn("issuer", "varchar(512)")
        .addColumn("subject", "varchar(512)")
        .addColumn("token_sha256", "char(64)")
        .addColumn("credential", "varchar(128)")
        .addColumn("decision", "varchar(16)", (c) => c.notNull())
        .addColumn("reason", "varchar(64)", (c) => c.notNull())
        .addColumn("issued_id", "varchar(128)")
        .addColumn("expires_at", "bigint")
        .execute();
      await db.schema.createIndex("token_exchanges_at").on("token_exchanges").column("at").execute();
      await db.schema
        .createIndex("token_exchanges_subject")
        .on("token_exchanges")
        .columns(["issuer", "subject"])
        .execute();
    },
  },
  "0004_signings": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("signings")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("request_id", "varchar(128)", (c) => c.notNull())
        .addColumn("issuer", "varchar(512)", (c) => c.notNull())
        .addColumn("subject", "varchar(512)", (c) => c.notNull())
        .addColumn("token_sha256", "char(64)", (c) => c.notNull())
        .addColumn("app", "varchar(128)", (c) => c.notNull())
        .addColumn("repository", "varchar(512)", (c) => c.notNull())
        .addColumn("digest", "varchar(200)", (c) => c.notNull())
        .addColumn("kind", "varchar(256)", (c) => c.notNull())
        .addColumn("format", "varchar(32)", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("key_id", "char(64)", (c) => c.notNull())
        .addColumn("location", "varchar(512)", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("signings_digest")
        .on("signings")
        .columns(["repository", "digest"])
        .execute();
    },
  },
  "0005_promotions": {
    async up(db: Kysely<unknown>) {
      // One row per promotion; gates, steps, result and verification reports as JSON text (read and
      // written whole by src/promotion/store.ts). `version` grows with every change: each write is a
      // compare-and-swap on (id, version).
      await db.schema
        .createTable("promotions")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("app", "varchar(128)", (c) => c.notNull())
        .addColumn("environment", "varchar(128)", (c) => c.notNull())
        .addColumn("digest", "varchar(200)", (c) => c.notNull())
        .addColumn("from_environment", "varchar(128)")
        .addColumn("source_repository", "varchar(512)", (c) => c.notNull())
        .addColumn("target_repository", "varchar(512)", (c) => c.notNull())
        .addColumn("state", "varchar(16)", (c) => c.notNull())
        .addColumn("version", "bigint", (c) => c.notNull())
        .addColumn("rollback", "integer", (c) => c.notNull())
        .addColumn("reason", "text")
        .addColumn("requested_by", "text", (c) => c.notNull())
        .addColumn("request_hash", "char(64)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("next_check_at", "bigint")
        .addColumn("gates", "text", (c) => c.notNull())
        .addColumn("steps", "text", (c) => c.notNull())
        .addColumn("result", "text")
        .addColumn("verification", "text")
        .execute();
      // At most one unfinished promotion per (app, environment, digest): concurrent identical
      // requests insert "on conflict do nothing" and re-read the one that won (both engines support
      // partial unique indexes).
      await sql`create unique index promotions_unfinished on promotions (app, environment, digest)
        where state in ('pending', 'waiting', 'running')`.execute(db);
      await db.schema
        .createIndex("promotions_due")
        .on("promotions")
        .columns(["state", "next_check_at"])
        .execute();
      await db.schema
        .createIndex("promotions_queue")
        .on("promotions")
        .columns(["app", "environment", "created_at"])
        .execute();
      await db.schema
        .createIndex("promotions_created")
        .on("promotions")
        .columns(["created_at", "id"])
        .execute();
      await db.schema
        .createTable("promotion_idempotency")
        .addColumn("key_sha256", "char(64)", (c) => c.primaryKey())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull())
        .addColumn("request_hash", "char(64)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      // Every digest that became current in an environment; `promotion_id` unique so a promotion is
      // recorded once, however often its `record` step runs.
      await db.schema
        .createTable("environment_history")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("app", "varchar(128)", (c) => c.notNull())
        .addColumn("environment", "varchar(128)", (c) => c.notNull())
        .addColumn("digest", "varchar(200)", (c) => c.notNull())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull().unique())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("rollback", "integer", (c) => c.notNull())
        .addColumn("reason", "text")
        .execute();
      await db.schema
        .createIndex("environment_history_at")
        .on("environment_history")
        .columns(["app", "environment", "at"])
        .execute();
      await db.schema
        .createTable("environment_current")
        .addColumn("app", "varchar(128)", (c) => c.notNull())
        .addColumn("environment", "varchar(128)", (c) => c.notNull())
        .addColumn("digest", "varchar(200)", (c) => c.notNull())
        .addColumn("since", "bigint", (c) => c.notNull())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull())
        .addPrimaryKeyConstraint("environment_current_pk", ["app", "environment"])
        .execute();
    },
  },
  "0006_approvals": {
    async up(db: Kysely<unknown>) {
      // One vote per person (issuer, subject) and promotion (src/approvals/store.ts); a vote keeps
      // what it was given for (app, digest, environment, policy hash) and the person's groups and
      // link claims (JSON text), so `requireEach` is counted and a person counts once across identities.
      await db.schema
        .createTable("approvals")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull())
        .addColumn("app", "varchar(128)", (c) => c.notNull())
        .addColumn("digest", "varchar(300)", (c) => c.notNull())
        .addColumn("environment", "varchar(128)", (c) => c.notNull())
        .addColumn("issuer", "varchar(128)", (c) => c.notNull())
        .addColumn("subject", "varchar(512)", (c) => c.notNull())
        .addColumn("name", "varchar(512)")
        .addColumn("decision", "varchar(16)", (c) => c.notNull())
        .addColumn("comment", "text")
        .addColumn("groups", "text", (c) => c.notNull())
        .addColumn("links", "text", (c) => c.notNull())
        .addColumn("policy_hash", "char(64)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("approvals_person")
        .on("approvals")
        .columns(["promotion_id", "issuer", "subject"])
        .unique()
        .execute();
    },
  },
  "0007_notifications": {
    async up(db: Kysely<unknown>) {
      // The notification outbox (src/notifications/): rows are written in the transaction of the
      // promotion change they tell of, and delivered by the worker. `body` is the rendered payload,
      // so every retry sends the same bytes; the receiver's URL and secret stay in the config.
      await db.schema
        .createTable("notification_outbox")
        .addColumn("id", "varchar(64)", (c) => c.primaryKey())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull())
        .addColumn("event", "varchar(32)", (c) => c.notNull())
        .addColumn("receiver", "varchar(128)", (c) => c.notNull())
        .addColumn("format", "varchar(16)", (c) => c.notNull())
        .addColumn("body", "text", (c) => c.notNull())
        .addColumn("state", "varchar(16)", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
        .addColumn("last_outcome", "varchar(64)")
        .addColumn("finished_at", "bigint")
        .execute();
      await db.schema
        .createIndex("notification_outbox_due")
        .on("notification_outbox")
        .columns(["state", "next_attempt_at"])
        .execute();
    },
  },
  "0008_audit": {
    async up(db: Kysely<unknown>) {
      // The hash chain (src/audit/): `seq` 1..n without gaps, JSON columns as text (RFC 8785 is
      // applied when hashing, not when storing).
      await db.schema
        .createTable("audit_log")
        .addColumn("seq", "bigint", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("type", "varchar(64)", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("subject", "varchar(512)", (c) => c.notNull())
        .addColumn("outcome", "varchar(64)", (c) => c.notNull())
        .addColumn("reason", "text")
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("prev_hash", "char(64)", (c) => c.notNull())
        .addColumn("hash", "char(64)", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("audit_log_subject").on("audit_log").columns(["subject", "seq"]).execute();
      // One row: the chain's head. Appends lock it (`for update` on PostgreSQL), so replicas queue
      // on it instead of forking the chain.
      await db.schema
        .createTable("audit_head")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("hash", "char(64)", (c) => c.notNull())
        .execute();
      await sql`insert into audit_head (id, seq, hash) values (1, 0, ${"0".repeat(64)})`.execute(db);
      await db.schema
        .createTable("audit_checkpoints")
        .addColumn("size", "bigint", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("origin", "varchar(512)", (c) => c.notNull())
        .addColumn("head", "char(64)", (c) => c.notNull())
        .addColumn("body", "text", (c) => c.notNull())
        .addColumn("signature", "text", (c) => c.notNull())
        .addColumn("key_id", "char(64)", (c) => c.notNull())
        .execute();
    },
  },
  "0009_break_glass": {
    async up(db: Kysely<unknown>) {
      // JSON text, null for an ordinary promotion: `break_glass` is written once with the request,
      // `review` with each review (the first closes it). SQLite adds one column per statement.
      await db.schema.alterTable("promotions").addColumn("break_glass", "text").execute();
      await db.schema.alterTable("promotions").addColumn("review", "text").execute();
      // Every review; one per person and promotion (a repeat is idempotent).
      await db.schema
        .createTable("promotion_reviews")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull())
        .addColumn("issuer", "varchar(200)", (c) => c.notNull())
        .addColumn("subject", "varchar(512)", (c) => c.notNull())
        .addColumn("name", "text")
        .addColumn("comment", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("late", "integer", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("promotion_reviews_person")
        .on("promotion_reviews")
        .columns(["promotion_id", "issuer", "subject"])
        .unique()
        .execute();
    },
  },
  "0010_audit_pending": {
    async up(db: Kysely<unknown>) {
      // Audit entries written in the transaction of the promotion change they record (src/audit/
      // pending.ts), so a stored decision always has its entry; the appender chains them and deletes
      // them in one transaction. No chain work happens in the promotion's transaction.
      await db.schema
        .createTable("audit_pending")
        .addColumn("id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("promotion_id", "varchar(36)", (c) => c.notNull())
        .addColumn("version", "bigint", (c) => c.notNull())
        .addColumn("ord", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("kind", "varchar(16)", (c) => c.notNull())
        .addColumn("entry", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("audit_pending_order")
        .on("audit_pending")
        .columns(["created_at", "promotion_id", "version", "ord"])
        .execute();
    },
  },
};

/** Serves {@link MIGRATIONS} to kysely's Migrator. */
export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
