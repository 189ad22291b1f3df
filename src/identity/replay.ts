import type { Kysely, RawBuilder } from "kysely";
import { type Clock, systemClock } from "../common/clock.ts";
import { CompiledInsert } from "../store/compiled-insert.ts";
import type { Database } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import { WriteBatcher } from "../store/write-batcher.ts";
import { IdentityError } from "./errors.ts";
import type { VerifiedToken } from "./verifier.ts";

interface ReplayRow extends Record<string, unknown> {
  id: string;
  expires_at: number;
}

/** Makes a token single-use: the port the exchange and the auth middleware call. */
export interface ReplayGuard {
  /** Records the token as used; throws {@link IdentityError} `token_replayed` if it already was. */
  consume(token: VerifiedToken): Promise<void>;
}

/** Options of {@link StoreReplayGuard}. */
export interface StoreReplayGuardOptions {
  /** The replica's clock: only paces the purge (which expiry it deletes is the database's call). */
  clock?: Clock;
  /** Delete expired rows at most this often (default 60 s); the purge rides on a `consume`. */
  purgeEveryMs?: number;
}

/**
 * A {@link ReplayGuard} kept in the store, so it holds across restarts and replicas: an atomic
 * `insert … on conflict do nothing returning id` (only one of two racing replicas inserts), with
 * the tokens of one event-loop turn grouped into one statement (see {@link WriteBatcher}). A row is
 * kept until the token's `exp` plus its issuer's leeway, after which the verifier refuses the token
 * anyway and the row can go. "After" is by the database's clock, never a replica's: a replica whose
 * clock runs ahead would otherwise delete rows of tokens that every other replica still accepts,
 * and those tokens could be used again there.
 */
export class StoreReplayGuard implements ReplayGuard {
  readonly #db: Kysely<Database>;
  readonly #dbNowMs: () => RawBuilder<number>;
  readonly #clock: Clock;
  readonly #purgeEveryMs: number;
  readonly #batcher: WriteBatcher<ReplayRow, boolean>;
  readonly #insertRows: CompiledInsert<Database, ReplayRow, { id: string }>;
  #lastPurge = 0;

  constructor(store: Pick<Store, "db" | "nowMs">, options: StoreReplayGuardOptions = {}) {
    const db = store.db;
    this.#db = db;
    this.#dbNowMs = () => store.nowMs();
    this.#clock = options.clock ?? systemClock;
    this.#purgeEveryMs = options.purgeEveryMs ?? 60_000;
    this.#batcher = new WriteBatcher((rows) => this.#insert(rows));
    this.#insertRows = new CompiledInsert(db, ["id", "expires_at"], (rows) =>
      db
        .insertInto("token_replay")
        .values([...rows])
        .onConflict((oc) => oc.column("id").doNothing())
        .returning("id"),
    );
  }

  async consume(token: VerifiedToken): Promise<void> {
    const now = this.#clock.now();
    const expiresAt = Math.ceil(token.expiresAt * 1000 + token.issuer.leewayMs);
    const fresh = await this.#batcher.submit({ id: token.replayKey, expires_at: expiresAt });
    if (!fresh) {
      throw new IdentityError("token_replayed", "the token has already been used", {
        detail: {
          issuer: token.issuer.name,
          sub: token.subject.slice(0, 200),
          jti: token.jti?.slice(0, 100),
        },
      });
    }
    if (now - this.#lastPurge >= this.#purgeEveryMs) {
      this.#lastPurge = now;
      await this.#db.deleteFrom("token_replay").where("expires_at", "<", this.#dbNowMs()).execute();
    }
  }

  /**
   * Inserts a batch in one statement; a row that already existed is not returned, so its token is
   * a replay. The same token twice in one batch: only the first occurrence can be fresh.
   */
  async #insert(rows: readonly ReplayRow[]): Promise<boolean[]> {
    const first = new Map<string, number>();
    rows.forEach((row, i) => {
      if (!first.has(row.id)) first.set(row.id, i);
    });
    const unique = [...first.values()].map((i) => rows[i]!);
    const { rows: inserted } = await this.#insertRows.execute(unique);
    const fresh = new Set(inserted.map((r) => r.id));
    return rows.map((row, i) => first.get(row.id) === i && fresh.has(row.id));
  }
}

/** An in-memory {@link ReplayGuard} for service tests (one process only: never used in production). */
export class MemoryReplayGuard implements ReplayGuard {
  readonly seen = new Set<string>();

  async consume(token: VerifiedToken): Promise<void> {
    if (this.seen.has(token.replayKey))
      throw new IdentityError("token_replayed", "the token has already been used");
    this.seen.add(token.replayKey);
  }
}
