import { randomUUID } from "node:crypto";
import {
  type DeleteQueryBuilder,
  type DeleteResult,
  type Expression,
  type Kysely,
  type RawBuilder,
  type SqlBool,
  sql,
  type UpdateQueryBuilder,
  type UpdateResult,
} from "kysely";
import type { Clock } from "../common/clock.ts";
import type { Database } from "./schema.ts";

/** A held lease. `fence` grows each time the lease changes hands. */
export interface Lease {
  name: string;
  holder: string;
  expiresAt: number;
  acquiredAt: number;
  fence: number;
}

/** How {@link LeaseStore.withLease} holds a lease. All in milliseconds. */
export interface LeaseOptions {
  /** How long the lease lasts without renewal (by the database's clock). */
  ttl: number;
  /** How often it is renewed while the work runs; default a third of `ttl`. Must be below `ttl`. */
  renewEvery?: number;
  /** How long to wait for a lease someone else holds before giving up; default 0 (do not wait). */
  wait?: number;
}

/** An update or delete whose `where` a fence can be added to. */
export type FenceableWrite =
  // biome-ignore lint/suspicious/noExplicitAny: any table of the schema
  | UpdateQueryBuilder<Database, any, any, UpdateResult>
  // biome-ignore lint/suspicious/noExplicitAny: any table of the schema
  | DeleteQueryBuilder<Database, any, DeleteResult>;

/** The lease as the work under {@link LeaseStore.withLease} sees it. */
export interface HeldLease {
  readonly name: string;
  readonly holder: string;
  readonly fence: number;
  /**
   * An SQL condition that is true only while this lease is still ours: same holder, same fence, not
   * expired by the database's clock. Add it to the `where` of a write (or an `insert … select …
   * where`) to make that write refuse itself once the lease has been lost, in the same statement.
   */
  held(): Expression<SqlBool>;
  /**
   * Runs an update or delete conditioned on {@link HeldLease.held} (single statement, atomic):
   * true when it changed a row; false when it changed nothing, which is what a stale fence gets.
   */
  fenced(write: FenceableWrite): Promise<boolean>;
}

/** {@link LeaseStore.withLease} gave up waiting: someone else holds the lease. */
export class LeaseBusyError extends Error {
  readonly lease: string;
  constructor(lease: string, waitedMs: number) {
    super(`lease ${lease} is held by another holder (waited ${waitedMs} ms)`);
    this.name = "LeaseBusyError";
    this.lease = lease;
  }
}

/** The lease expired or changed hands while work ran under it: the signal's abort reason. */
export class LeaseLostError extends Error {
  readonly lease: string;
  constructor(lease: string, why: string, options?: { cause?: unknown }) {
    super(`lease ${lease} was lost: ${why}`, options);
    this.name = "LeaseLostError";
    this.lease = lease;
  }
}

/** First and largest pause between two attempts at a held lease, ms (jittered, doubling). */
const FIRST_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 1_000;

/**
 * Named locks with a holder and an expiry, kept in the database so they hold across replicas.
 * Acquisition is one atomic upsert: it succeeds when the lease is free, expired, or already ours
 * (which renews it). PostgreSQL's `ON CONFLICT DO UPDATE` locks the row and re-checks the `WHERE`
 * on its latest version, so two replicas can never both win; SQLite serialises writers.
 * Expiry uses the database's clock, never a replica's; waiting and renewal intervals use `clock`.
 */
export class LeaseStore {
  readonly #db: Kysely<Database>;
  readonly #now: () => RawBuilder<number>;
  readonly #clock: Clock;

  constructor(db: Kysely<Database>, now: () => RawBuilder<number>, clock: Clock) {
    this.#db = db;
    this.#now = now;
    this.#clock = clock;
  }

  /** Takes (or renews) the lease for `ttlMs`; undefined when another holder has it. */
  async acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    checkTtl(ttlMs);
    const now = this.#now();
    const still = sql`leases.holder = excluded.holder and leases.expires_at > ${now}`;
    const result = await sql<LeaseRow>`
      insert into leases (name, holder, expires_at, acquired_at, fence)
      values (${name}, ${holder}, ${now} + ${ttlMs}, ${now}, 1)
      on conflict (name) do update set
        holder = excluded.holder,
        expires_at = excluded.expires_at,
        acquired_at = case when ${still} then leases.acquired_at else excluded.acquired_at end,
        fence = case when ${still} then leases.fence else leases.fence + 1 end
      where leases.holder = excluded.holder or leases.expires_at <= ${now}
      returning name, holder, expires_at, acquired_at, fence`.execute(this.#db);
    return toLease(result.rows[0]);
  }

  /**
   * Extends a lease we still hold (same holder and fence, not expired) by `ttlMs` from now;
   * undefined when it has expired or changed hands, even if no one else has taken it yet.
   */
  async renew(lease: Pick<Lease, "name" | "holder" | "fence">, ttlMs: number): Promise<Lease | undefined> {
    checkTtl(ttlMs);
    const now = this.#now();
    const result = await sql<LeaseRow>`
      update leases set expires_at = ${now} + ${ttlMs}
      where name = ${lease.name} and holder = ${lease.holder} and fence = ${lease.fence}
        and expires_at > ${now}
      returning name, holder, expires_at, acquired_at, fence`.execute(this.#db);
    return toLease(result.rows[0]);
  }

  /** Gives the lease up if `holder` has it; true when it did. */
  async release(name: string, holder: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom("leases")
      .where("name", "=", name)
      .where("holder", "=", holder)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** The current holder, if the lease is held and not expired. */
  async holder(name: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom("leases")
      .select("holder")
      .where("name", "=", name)
      .where("expires_at", ">", this.#now())
      .executeTakeFirst();
    return row?.holder;
  }

  /** The condition "this lease is still held with this fence", for a write's `where`. */
  held(lease: Pick<Lease, "name" | "holder" | "fence">): Expression<SqlBool> {
    return sql<SqlBool>`exists (select 1 from leases where leases.name = ${lease.name}
      and leases.holder = ${lease.holder} and leases.fence = ${lease.fence}
      and leases.expires_at > ${this.#now()})`;
  }

  /**
   * Runs `fn` while holding the lease `name`: waits up to `wait` for it (polling with jittered
   * backoff), renews it every `renewEvery` in the background, and releases it when `fn` settles.
   * When a renewal fails (the lease expired, say because this process stalled past `ttl`, or it
   * changed hands, or the database did not answer) `signal` aborts with a {@link LeaseLostError}:
   * `fn` should stop at its next step. Its database writes can be fenced with
   * {@link HeldLease.fenced}, so a holder that has not noticed the loss yet changes nothing.
   * Throws {@link LeaseBusyError} when the lease stayed taken for `wait`.
   */
  async withLease<T>(
    name: string,
    options: LeaseOptions,
    fn: (lease: HeldLease, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const { ttl, wait = 0 } = options;
    const renewEvery = options.renewEvery ?? Math.max(1, Math.floor(ttl / 3));
    checkTtl(ttl);
    if (!Number.isInteger(renewEvery) || renewEvery <= 0 || renewEvery >= ttl)
      throw new RangeError("lease renewEvery must be a positive integer (ms) below ttl");
    if (!(wait >= 0)) throw new RangeError("lease wait must be >= 0 (ms)");

    const holder = randomUUID();
    const started = this.#clock.now();
    let backoff = FIRST_BACKOFF_MS;
    let acquired = await this.acquire(name, holder, ttl);
    while (acquired === undefined) {
      const waited = this.#clock.now() - started;
      if (waited >= wait) throw new LeaseBusyError(name, waited);
      const pause = Math.round(backoff * (0.5 + Math.random()));
      await this.#clock.sleep(Math.min(pause, wait - waited));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      acquired = await this.acquire(name, holder, ttl);
    }

    const lease = { name, holder, fence: acquired.fence };
    const lost = new AbortController();
    const done = new AbortController();
    const renewing = (async () => {
      for (;;) {
        try {
          await this.#clock.sleep(renewEvery, done.signal);
        } catch {
          return; // fn settled: stop renewing
        }
        try {
          if ((await this.renew(lease, ttl)) === undefined) {
            lost.abort(new LeaseLostError(name, "it expired or changed hands before it was renewed"));
            return;
          }
        } catch (err) {
          // Without a renewal we cannot know how long the lease still holds: fail closed.
          lost.abort(new LeaseLostError(name, "renewing it failed", { cause: err }));
          return;
        }
      }
    })();

    const handle: HeldLease = {
      ...lease,
      held: () => this.held(lease),
      fenced: async (write) => {
        // Both builders take the same `where`; the union's overloads are not callable as one.
        const query = write as unknown as {
          where(condition: Expression<SqlBool>): { executeTakeFirst(): Promise<UpdateResult | DeleteResult> };
        };
        const result = await query.where(this.held(lease)).executeTakeFirst();
        const changed = "numUpdatedRows" in result ? result.numUpdatedRows : result.numDeletedRows;
        return Number(changed) > 0;
      },
    };
    try {
      return await fn(handle, lost.signal);
    } finally {
      done.abort();
      await renewing;
      // Only our own holder id is deleted; should the release itself fail, the lease still ends
      // by itself within `ttl`, and `fn`'s outcome (already decided) is what the caller needs.
      await this.release(name, holder).catch(() => undefined);
    }
  }
}

interface LeaseRow {
  name: string;
  holder: string;
  expires_at: number;
  acquired_at: number;
  fence: number;
}

function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0)
    throw new RangeError("lease ttl must be a positive integer (ms)");
}

function toLease(row: LeaseRow | undefined): Lease | undefined {
  if (!row) return undefined;
  return {
    name: row.name,
    holder: row.holder,
    expiresAt: Number(row.expires_at),
    acquiredAt: Number(row.acquired_at),
    fence: Number(row.fence),
  };
}
