import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Database } from "./schema.ts";

/** A held lease. `fence` grows each time the lease changes hands. */
export interface Lease {
  name: string;
  holder: string;
  expiresAt: number;
  acquiredAt: number;
  fence: number;
}

/**
 * Named locks with a holder and an expiry, kept in the database so they hold across replicas.
 * Acquisition is one atomic upsert: it succeeds when the lease is free, expired, or already ours
 * (which renews it). PostgreSQL's `ON CONFLICT DO UPDATE` locks the row and re-checks the `WHERE`
 * on its latest version, so two replicas can never both win; SQLite serialises writers.
 * Expiry uses the database's clock, never a replica's.
 */
export class LeaseStore {
  readonly #db: Kysely<Database>;
  readonly #now: () => RawBuilder<number>;

  constructor(db: Kysely<Database>, now: () => RawBuilder<number>) {
    this.#db = db;
    this.#now = now;
  }

  /** Takes (or renews) the lease for `ttlMs`; undefined when another holder has it. */
  async acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    if (!Number.isInteger(ttlMs) || ttlMs <= 0)
      throw new RangeError("lease ttl must be a positive integer (ms)");
    const now = this.#now();
    const still = sql`leases.holder = excluded.holder and leases.expires_at > ${now}`;
    const result = await sql<{
      name: string;
      holder: string;
      expires_at: number;
      acquired_at: number;
      fence: number;
    }>`
      insert into leases (name, holder, expires_at, acquired_at, fence)
      values (${name}, ${holder}, ${now} + ${ttlMs}, ${now}, 1)
      on conflict (name) do update set
        holder = excluded.holder,
        expires_at = excluded.expires_at,
        acquired_at = case when ${still} then leases.acquired_at else excluded.acquired_at end,
        fence = case when ${still} then leases.fence else leases.fence + 1 end
      where leases.holder = excluded.holder or leases.expires_at <= ${now}
      returning name, holder, expires_at, acquired_at, fence`.execute(this.#db);
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      name: row.name,
      holder: row.holder,
      expiresAt: Number(row.expires_at),
      acquiredAt: Number(row.acquired_at),
      fence: Number(row.fence),
    };
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
}
