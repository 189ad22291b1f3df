import { mkdirSync } from "node:fs";
import path from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, type RawBuilder, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { type Clock, systemClock } from "../common/clock.ts";
import { type HeldLease, type LeaseOptions, LeaseStore } from "./leases.ts";
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
  /** Times waits and renewal intervals (the system clock unless {@link StoreOptions.clock}). */
  readonly clock: Clock;
  /** The database's clock in epoch milliseconds, as an SQL expression (one clock for all replicas). */
  nowMs(): RawBuilder<number>;
  /**
   * Runs `fn` in one transaction: everything it writes through `tx` lands together or not at all
   * (it rolls back when `fn` throws). Use only `tx` inside `fn`, never `store.db`, and keep network
   * I/O out: on SQLite the one connection is `fn`'s until it settles (see {@link openStore}).
   */
  transaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** {@link LeaseStore.withLease}: runs `fn` under a renewed, fenced lease. */
  withLease<T>(
    name: string,
    options: LeaseOptions,
    fn: (lease: HeldLease, signal: AbortSignal) => Promise<T>,
  ): Promise<T>;
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** How {@link openStore} runs, for tests. */
export interface StoreOptions {
  /**
   * A clock to use in place of the database's (lease expiry, `nowMs`) and for waits and renewals:
   * tests pass a `FakeClock` so a lease expires when the test says, not after a real sleep. Leave
   * unset in production, where replicas must share the database's clock.
   */
  clock?: Clock;
}

const INT8_OID = 20;

/**
 * Opens the store and brings its schema up to date. SQLite runs in WAL mode with a busy timeout;
 * PostgreSQL runs the migrations under kysely's migration lock, so replicas may start together.
 *
 * Transactions: on PostgreSQL, kysely's (`begin` … `commit` on one pooled connection, read
 * committed). On SQLite, `begin immediate`: the write lock is taken up front, so a second process on
 * the same file waits out `busy_timeout` instead of failing with SQLITE_BUSY when a deferred
 * transaction tries to upgrade. Within this process kysely's SQLite driver has one connection
 * behind a mutex, and the transaction holds it until `fn` settles: statements of other requests
 * queue behind it instead of interleaving into it (which is why `fn` must not do network I/O).
 * better-sqlite3 waits out `busy_timeout` synchronously, so a second store opened on the same file
 * in the same process must not write while the first holds a transaction (one store per process).
 */
export async function openStore(spec: StoreSpec, options: StoreOptions = {}): Promise<Store> {
  let db: Kysely<Database>;
  let engine: Engine;
  let sqlite: SQLite.Database | undefined;
  if ("sqlite" in spec) {
    engine = "sqlite";
    if (spec.sqlite !== ":memory:") mkdirSync(path.dirname(spec.sqlite), { recursive: true });
    const database = new SQLite(spec.sqlite);
    sqlite = database;
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

  const { clock: testClock } = options;
  const nowMs = testClock
    ? () => sql<number>`cast(${testClock.now()} as bigint)`
    : engine === "postgres"
      ? () => sql<number>`(extract(epoch from now()) * 1000)::bigint`
      : () => sql<number>`cast((julianday('now') - 2440587.5) * 86400000.0 as integer)`;
  const clock = testClock ?? systemClock;

  const transaction = <T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> => {
    if (sqlite === undefined) return db.transaction().execute(fn);
    const database = sqlite;
    return db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      let result: T;
      try {
        result = await fn(conn);
      } catch (err) {
        // SQLite may already have rolled back by itself (e.g. on SQLITE_FULL); a transaction left
        // open would swallow every later statement of this connection, so that must not pass.
        if (database.inTransaction) await sql`rollback`.execute(conn);
        throw err;
      }
      try {
        await sql`commit`.execute(conn);
      } catch (err) {
        if (database.inTransaction) await sql`rollback`.execute(conn);
        throw err;
      }
      return result;
    });
  };

  try {
    const result = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
    if (result.error) throw result.error;
  } catch (err) {
    await db.destroy();
    throw new Error(`store: migrating the ${engine} database failed: ${(err as Error).message}`, {
      cause: err,
    });
  }

  const leases = new LeaseStore(db, nowMs, clock);
  return {
    engine,
    db,
    leases,
    clock,
    nowMs,
    transaction,
    withLease: (name, leaseOptions, fn) => leases.withLease(name, leaseOptions, fn),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}
