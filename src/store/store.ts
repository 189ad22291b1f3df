import { mkdirSync } from "node:fs";
import path from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, type RawBuilder, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { LeaseStore } from "./leases.ts";
import { migrationProvider } from "./migrations.ts";
import type { Database } from "./schema.ts";

/** Which database engine backs a store. */
export type Engine = "sqlite" | "postgres";

/** Where the store lives: the `store` section of ferry.yaml, paths already resolved. */
export type StoreSpec = { sqlite: string } | { postgres: string };

/** Ferry's database: one query layer (kysely) over SQLite or PostgreSQL. */
export interface Store {
  readonly engine: Engine;
  readonly db: Kysely<Database>;
  readonly leases: LeaseStore;
  /** The database's clock in epoch milliseconds, as an SQL expression (one clock for all replicas). */
  nowMs(): RawBuilder<number>;
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const INT8_OID = 20;

/**
 * Opens the store and brings its schema up to date. SQLite runs in WAL mode with a busy timeout;
 * PostgreSQL runs the migrations under kysely's migration lock, so replicas may start together.
 */
export async function openStore(spec: StoreSpec): Promise<Store> {
  let db: Kysely<Database>;
  let engine: Engine;
  if ("sqlite" in spec) {
    engine = "sqlite";
    if (spec.sqlite !== ":memory:") mkdirSync(path.dirname(spec.sqlite), { recursive: true });
    const database = new SQLite(spec.sqlite);
    database.pragma("journal_mode = WAL");
    database.pragma("busy_timeout = 5000");
    database.pragma("foreign_keys = ON");
    database.pragma("synchronous = NORMAL");
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  } else {
    engine = "postgres";
    const pool = new pg.Pool({
      connectionString: spec.postgres,
      max: 10,
      connectionTimeoutMillis: 5_000,
      // Epoch milliseconds live in bigint columns; they fit a JS number exactly, so parse them as one
      // (per pool, not through pg's global type registry).
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8_OID
            ? (value: string) => Number(value)
            : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
      },
    });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }

  const nowMs =
    engine === "postgres"
      ? () => sql<number>`(extract(epoch from now()) * 1000)::bigint`
      : () => sql<number>`cast((julianday('now') - 2440587.5) * 86400000.0 as integer)`;

  try {
    const result = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
    if (result.error) throw result.error;
  } catch (err) {
    await db.destroy();
    throw new Error(`store: migrating the ${engine} database failed: ${(err as Error).message}`, {
      cause: err,
    });
  }

  return {
    engine,
    db,
    leases: new LeaseStore(db, nowMs),
    nowMs,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}
