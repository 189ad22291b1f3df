import type { Kysely, Selectable } from "kysely";
import { FerryError } from "../common/errors.ts";
import { newRecordId } from "../common/ids.ts";
import type { HeldLease } from "../store/leases.ts";
import type { Database, PromotionsTable } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import type { UpstreamEntry } from "./gates.ts";
import type { ReadScope } from "./read-access.ts";
import type { PromotionRecord } from "./record.ts";
import type { TargetHistory } from "./rollback.ts";
import { type PromotionState, UNFINISHED_STATES } from "./states.ts";

type Row = Selectable<PromotionsTable>;

/** The fields a compare-and-swap update may change. */
export type PromotionChanges = Partial<
  Pick<PromotionRecord, "state" | "nextCheckAt" | "gates" | "steps" | "result" | "verification" | "review">
>;

/** An entry of an environment's history. */
export interface HistoryEntry {
  digest: string;
  promotion: string;
  at: number;
  rollback: boolean;
  reason?: string;
}

/** The digest current in an (app, environment). */
export interface CurrentEntry {
  app: string;
  environment: string;
  digest: string;
  since: number;
  promotion: string;
}

/** A page of promotions, newest first. */
export interface PromotionPage {
  items: PromotionRecord[];
  next?: string;
}

/** Filters of {@link PromotionStore.list}. */
export interface PromotionFilter {
  app?: string;
  environment?: string;
  state?: PromotionState;
  limit: number;
  cursor?: string;
  /** Only promotions into these (app, environment) pairs: the caller's {@link ReadScope}. */
  visible?: ReadScope;
  /** true: only break-glass promotions; false: only ordinary ones. */
  breakGlass?: boolean;
  /** Only break-glass promotions, reviewed (true) or not yet (false). */
  reviewed?: boolean;
}

const UNFINISHED = UNFINISHED_STATES as PromotionState[];

/**
 * Told of every stored change of a promotion, after it is committed: `before` is the version the
 * change was made against (undefined for a new promotion). Notifications and the audit log listen
 * here, so no writer (engine, service, approvals) can forget to tell them. Listeners must not throw
 * and must not block: they queue their own work.
 */
export type PromotionListener = (after: PromotionRecord, before: PromotionRecord | undefined) => void;

/**
 * Runs inside the transaction of every change of a promotion, after the change: what it writes
 * through `tx` commits with the change or not at all (a transactional outbox: a notification is
 * queued exactly when its transition is stored). Keep it to a few inserts; throwing rolls the change
 * back.
 */
export type PromotionWriteHook = (
  tx: Kysely<Database>,
  after: PromotionRecord,
  before: PromotionRecord | undefined,
) => Promise<void>;

function decode(row: Row): PromotionRecord {
  return {
    id: row.id,
    app: row.app,
    environment: row.environment,
    digest: row.digest,
    from: row.from_environment,
    sourceRepository: row.source_repository,
    targetRepository: row.target_repository,
    state: row.state as PromotionState,
    version: Number(row.version),
    rollback: Number(row.rollback) === 1,
    ...(row.reason === null ? {} : { reason: row.reason }),
    requestedBy: JSON.parse(row.requested_by),
    requestHash: row.request_hash.trim(),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    nextCheckAt: row.next_check_at === null ? null : Number(row.next_check_at),
    gates: JSON.parse(row.gates),
    steps: JSON.parse(row.steps),
    ...(row.result === null ? {} : { result: JSON.parse(row.result) }),
    ...(row.verification === null ? {} : { verification: JSON.parse(row.verification) }),
    ...(row.break_glass === null ? {} : { breakGlass: JSON.parse(row.break_glass) }),
    ...(row.review === null ? {} : { review: JSON.parse(row.review) }),
  };
}

function encodeChanges(changes: PromotionChanges): Partial<Row> {
  const out: Partial<Row> = {};
  if (changes.state !== undefined) out.state = changes.state;
  if (changes.nextCheckAt !== undefined) out.next_check_at = changes.nextCheckAt;
  if (changes.gates !== undefined) out.gates = JSON.stringify(changes.gates);
  if (changes.steps !== undefined) out.steps = JSON.stringify(changes.steps);
  if (changes.result !== undefined) out.result = JSON.stringify(changes.result);
  if (changes.verification !== undefined) out.verification = JSON.stringify(changes.verification);
  if (changes.review !== undefined) out.review = JSON.stringify(changes.review);
  return out;
}

function encodeCursor(row: Pick<PromotionRecord, "createdAt" | "id">): string {
  return Buffer.from(JSON.stringify([row.createdAt, row.id])).toString("base64url");
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      Number.isSafeInteger(value[0]) &&
      typeof value[1] === "string"
    )
      return [value[0], value[1]];
  } catch {
    // falls through to the refusal
  }
  throw new FerryError("validation_failed", "`cursor` is not a cursor this server handed out", {
    extra: { reason: "invalid_cursor" },
  });
}

/**
 * The promotion tables (`promotions`, `promotion_idempotency`, `environment_history`,
 * `environment_current`) behind the engine. Every change of a promotion is a compare-and-swap on
 * (id, version), optionally fenced by the worker's lease, followed by a re-read; the multi-row
 * change of `record` is one transaction.
 */
export class PromotionStore {
  readonly #store: Store;
  readonly #listeners: PromotionListener[] = [];
  readonly #hooks: PromotionWriteHook[] = [];

  constructor(store: Store) {
    this.#store = store;
  }

  /** Adds a listener for every committed change (see {@link PromotionListener}). */
  onChange(listener: PromotionListener): void {
    this.#listeners.push(listener);
  }

  /** Adds a hook that writes with every change, in its transaction (see {@link PromotionWriteHook}). */
  onWrite(hook: PromotionWriteHook): void {
    this.#hooks.push(hook);
  }

  async #runHooks(tx: Kysely<Database>, after: PromotionRecord, before: PromotionRecord | undefined) {
    for (const hook of this.#hooks) await hook(tx, after, before);
  }

  #emit(after: PromotionRecord, before: PromotionRecord | undefined): void {
    for (const listener of this.#listeners) listener(after, before);
  }

  get #db(): Kysely<Database> {
    return this.#store.db;
  }

  /** One promotion, or undefined. */
  async get(id: string, db: Kysely<Database> = this.#db): Promise<PromotionRecord | undefined> {
    const row = await db.selectFrom("promotions").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? undefined : decode(row);
  }

  /** The unfinished promotion of (app, environment, digest), if there is one (at most one: unique index). */
  async findUnfinished(
    app: string,
    environment: string,
    digest: string,
    db: Kysely<Database> = this.#db,
  ): Promise<PromotionRecord | undefined> {
    const row = await db
      .selectFrom("promotions")
      .selectAll()
      .where("app", "=", app)
      .where("environment", "=", environment)
      .where("digest", "=", digest)
      .where("state", "in", UNFINISHED)
      .executeTakeFirst();
    return row === undefined ? undefined : decode(row);
  }

  /** The promotion an idempotency key was first used for, and the hash of that request. */
  async findByKey(keySha256: string): Promise<{ promotionId: string; requestHash: string } | undefined> {
    const row = await this.#db
      .selectFrom("promotion_idempotency")
      .select(["promotion_id", "request_hash"])
      .where("key_sha256", "=", keySha256)
      .executeTakeFirst();
    return row === undefined
      ? undefined
      : { promotionId: row.promotion_id, requestHash: row.request_hash.trim() };
  }

  /**
   * Inserts a requested promotion unless an unfinished one of the same (app, environment, digest)
   * exists, and binds the idempotency key to whichever one that is, all in one transaction. The
   * insert does nothing on conflict and the winner is re-read, so concurrent identical requests
   * (on any replica) get one promotion. A key already bound to another request's hash is
   * `idempotency_key_reused`, and nothing is written. An existing winner that `refuse` returns an
   * error for (a break-glass request meeting an ordinary promotion) throws it, binding no key.
   */
  async insert(
    record: PromotionRecord,
    key: { sha256: string } | undefined,
    refuse?: (winner: PromotionRecord) => Error | undefined,
  ): Promise<{ promotion: PromotionRecord; created: boolean }> {
    const result = await this.#store.transaction(async (tx) => {
      if (key !== undefined) {
        const bound = await tx
          .selectFrom("promotion_idempotency")
          .select(["promotion_id", "request_hash"])
          .where("key_sha256", "=", key.sha256)
          .executeTakeFirst();
        if (bound !== undefined) return this.#bound(tx, bound, record.requestHash);
      }
      await tx
        .insertInto("promotions")
        .values({
          id: record.id,
          app: record.app,
          environment: record.environment,
          digest: record.digest,
          from_environment: record.from,
          source_repository: record.sourceRepository,
          target_repository: record.targetRepository,
          state: record.state,
          version: record.version,
          rollback: record.rollback ? 1 : 0,
          reason: record.reason ?? null,
          requested_by: JSON.stringify(record.requestedBy),
          request_hash: record.requestHash,
          created_at: record.createdAt,
          updated_at: record.updatedAt,
          next_check_at: record.nextCheckAt,
          gates: JSON.stringify(record.gates),
          steps: JSON.stringify(record.steps),
          result: null,
          verification: null,
          break_glass: record.breakGlass === undefined ? null : JSON.stringify(record.breakGlass),
          review: null,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
      const winner = await this.findUnfinished(record.app, record.environment, record.digest, tx);
      // The winner finished between our conflict and the re-read (a very fast promotion): ask again.
      if (winner === undefined)
        throw new FerryError(
          "conflict",
          "the promotion changed while it was requested; send the request again",
        );
      const refusal = winner.id === record.id ? undefined : refuse?.(winner);
      if (refusal !== undefined) throw refusal;
      if (key !== undefined) {
        await tx
          .insertInto("promotion_idempotency")
          .values({
            key_sha256: key.sha256,
            promotion_id: winner.id,
            request_hash: record.requestHash,
            created_at: record.createdAt,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        const bound = await tx
          .selectFrom("promotion_idempotency")
          .select(["promotion_id", "request_hash"])
          .where("key_sha256", "=", key.sha256)
          .executeTakeFirstOrThrow();
        if (bound.promotion_id !== winner.id) return this.#bound(tx, bound, record.requestHash);
      }
      const created = winner.id === record.id;
      if (created) await this.#runHooks(tx, winner, undefined);
      return { promotion: winner, created };
    });
    if (result.created) this.#emit(result.promotion, undefined);
    return result;
  }

  async #bound(
    tx: Kysely<Database>,
    bound: { promotion_id: string; request_hash: string },
    requestHash: string,
  ): Promise<{ promotion: PromotionRecord; created: boolean }> {
    if (bound.request_hash.trim() !== requestHash)
      throw new FerryError(
        "idempotency_key_reused",
        "this Idempotency-Key was already used for a different request; use a new key for a new request",
        { extra: { promotion: bound.promotion_id } },
      );
    const promotion = await this.get(bound.promotion_id, tx);
    if (promotion === undefined) throw new FerryError("internal", "an idempotency key names no promotion");
    return { promotion, created: false };
  }

  /**
   * Compare-and-swap: applies `changes` to `current` if it is still at `current.version` (and, with
   * `lease`, only while the lease is held), bumping the version; returns the re-read promotion, or
   * undefined when someone else changed it first (or the lease was lost).
   */
  async update(
    current: PromotionRecord,
    changes: PromotionChanges,
    now: number,
    lease?: HeldLease,
    db?: Kysely<Database>,
  ): Promise<PromotionRecord | undefined> {
    if (db === undefined && this.#hooks.length > 0) {
      // The hooks' writes commit with the change: one transaction for both.
      const updated = await this.#store.transaction((tx) => this.update(current, changes, now, lease, tx));
      if (updated !== undefined) this.#emit(updated, current);
      return updated;
    }
    const inTransaction = db !== undefined;
    db ??= this.#db;
    const write = db
      .updateTable("promotions")
      .set({ ...encodeChanges(changes), version: current.version + 1, updated_at: now })
      .where("id", "=", current.id)
      .where("version", "=", current.version);
    const changed =
      lease === undefined
        ? Number((await write.executeTakeFirst()).numUpdatedRows) > 0
        : await lease.fenced(write);
    if (!changed) return undefined;
    const updated = await this.get(current.id, db);
    if (updated === undefined) return undefined;
    // Inside a transaction the hooks write with it, and the listeners are told once it commits.
    if (inTransaction) await this.#runHooks(db, updated, current);
    else this.#emit(updated, current);
    return updated;
  }

  /**
   * Records a promotion as promoted, in one transaction fenced by the worker's lease: the state
   * change (compare-and-swap), the history entry (unique per promotion), the environment's current
   * digest, and the supersession of `supersede` (older queued promotions of the same app and
   * environment). Returns undefined, having written nothing, when the promotion changed under us or
   * the lease was lost.
   */
  async record(
    current: PromotionRecord,
    changes: PromotionChanges,
    supersede: readonly string[],
    now: number,
    lease: HeldLease,
  ): Promise<PromotionRecord | undefined> {
    const superseded: PromotionRecord[] = [];
    const recorded = await this.#store.transaction(async (tx) => {
      superseded.length = 0;
      const updated = await this.update(
        current,
        { ...changes, state: "promoted", nextCheckAt: null },
        now,
        lease,
        tx,
      );
      if (updated === undefined) return undefined;
      await tx
        .insertInto("environment_history")
        .values({
          id: newRecordId(),
          app: current.app,
          environment: current.environment,
          digest: current.digest,
          promotion_id: current.id,
          at: now,
          rollback: current.rollback ? 1 : 0,
          reason: current.reason ?? null,
        })
        .execute();
      await tx
        .insertInto("environment_current")
        .values({
          app: current.app,
          environment: current.environment,
          digest: current.digest,
          since: now,
          promotion_id: current.id,
        })
        .onConflict((oc) =>
          oc.columns(["app", "environment"]).doUpdateSet({
            digest: current.digest,
            since: now,
            promotion_id: current.id,
          }),
        )
        .execute();
      if (supersede.length > 0) {
        for (const id of supersede) {
          const queued = await this.get(id, tx);
          if (queued !== undefined && (queued.state === "pending" || queued.state === "waiting"))
            superseded.push(queued);
        }
        await tx
          .updateTable("promotions")
          .set((eb) => ({
            state: "superseded",
            next_check_at: null,
            updated_at: now,
            version: eb("version", "+", 1),
            result: JSON.stringify({
              reason: "superseded",
              message: `a newer promotion (${current.id}) of ${current.digest} was promoted into ${current.environment} first`,
            }),
          }))
          .where("id", "in", [...supersede])
          .where("state", "in", ["pending", "waiting"])
          .execute();
        if (this.#hooks.length > 0)
          for (const before of superseded) {
            const after = await this.get(before.id, tx);
            if (after !== undefined) await this.#runHooks(tx, after, before);
          }
      }
      return updated;
    });
    if (recorded !== undefined) {
      this.#emit(recorded, current);
      for (const before of superseded) {
        const after = await this.get(before.id);
        if (after !== undefined) this.#emit(after, before);
      }
    }
    return recorded;
  }

  /** Every unfinished promotion of (app, environment), oldest first. */
  async queue(app: string, environment: string): Promise<PromotionRecord[]> {
    const rows = await this.#db
      .selectFrom("promotions")
      .selectAll()
      .where("app", "=", app)
      .where("environment", "=", environment)
      .where("state", "in", UNFINISHED)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(decode);
  }

  /**
   * The (app, environment) pairs with work due at `now`: pending, waiting or running, and due (a
   * running promotion whose step waits, for a merge, is due again at its `next_check_at`).
   */
  async duePairs(now: number, limit: number): Promise<{ app: string; environment: string }[]> {
    return this.#db
      .selectFrom("promotions")
      .select(["app", "environment"])
      .distinct()
      .where((eb) =>
        eb.and([
          eb("state", "in", ["pending", "waiting", "running"]),
          eb.or([eb("next_check_at", "is", null), eb("next_check_at", "<=", now)]),
        ]),
      )
      .limit(limit)
      .execute();
  }

  /**
   * Makes every waiting promotion due at `now`: at start, when the config may have changed the rules
   * their gates wait on (approvals voided or no longer needed, a freeze lifted). Only the schedule
   * moves (no version bump): the worker's next look decides, and stores, whatever changed.
   */
  async wakeWaiting(now: number): Promise<number> {
    const result = await this.#db
      .updateTable("promotions")
      .set({ next_check_at: now })
      .where("state", "=", "waiting")
      .where("next_check_at", ">", now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** When the earliest unfinished promotion is due, if any. */
  async nextDue(): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom("promotions")
      .select((eb) => eb.fn.min("next_check_at").as("at"))
      .where("state", "in", ["pending", "waiting", "running"])
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  /** The digest's latest entry into `environment`, and whether a later rollback there recalled it. */
  async upstreamEntry(app: string, environment: string, digest: string): Promise<UpstreamEntry | undefined> {
    const entry = await this.#db
      .selectFrom("environment_history")
      .select("at")
      .where("app", "=", app)
      .where("environment", "=", environment)
      .where("digest", "=", digest)
      .orderBy("at", "desc")
      .executeTakeFirst();
    if (entry === undefined) return undefined;
    const enteredAt = Number(entry.at);
    // Recalled: a rollback to another digest there after it entered.
    const recall = await this.#db
      .selectFrom("environment_history")
      .select("at")
      .where("app", "=", app)
      .where("environment", "=", environment)
      .where("digest", "!=", digest)
      .where("rollback", "=", 1)
      .where("at", ">", enteredAt)
      .orderBy("at")
      .executeTakeFirst();
    return { enteredAt, recalledAt: recall === undefined ? undefined : Number(recall.at) };
  }

  /** What the rollback check needs of the target: its current digest and every digest ever current. */
  async targetHistory(app: string, environment: string): Promise<TargetHistory> {
    const [current, previous] = await Promise.all([
      this.#db
        .selectFrom("environment_current")
        .select("digest")
        .where("app", "=", app)
        .where("environment", "=", environment)
        .executeTakeFirst(),
      this.#db
        .selectFrom("environment_history")
        .select("digest")
        .distinct()
        .where("app", "=", app)
        .where("environment", "=", environment)
        .execute(),
    ]);
    return { current: current?.digest, previous: previous.map((r) => r.digest) };
  }

  /** The current digests of every (app, environment) that has one. */
  async currents(): Promise<CurrentEntry[]> {
    const rows = await this.#db.selectFrom("environment_current").selectAll().execute();
    return rows.map((r) => ({
      app: r.app,
      environment: r.environment,
      digest: r.digest,
      since: Number(r.since),
      promotion: r.promotion_id,
    }));
  }

  /** An environment's history, newest first, at most `limit` entries. */
  async history(app: string, environment: string, limit: number): Promise<HistoryEntry[]> {
    const rows = await this.#db
      .selectFrom("environment_history")
      .selectAll()
      .where("app", "=", app)
      .where("environment", "=", environment)
      .orderBy("at", "desc")
      .orderBy("id", "desc")
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      digest: r.digest,
      promotion: r.promotion_id,
      at: Number(r.at),
      rollback: Number(r.rollback) === 1,
      ...(r.reason === null ? {} : { reason: r.reason }),
    }));
  }

  /** Promotions newest first, filtered, with an opaque cursor to the next page. */
  async list(filter: PromotionFilter): Promise<PromotionPage> {
    let query = this.#db.selectFrom("promotions").selectAll();
    if (filter.app !== undefined) query = query.where("app", "=", filter.app);
    if (filter.environment !== undefined) query = query.where("environment", "=", filter.environment);
    if (filter.state !== undefined) query = query.where("state", "=", filter.state);
    if (filter.breakGlass !== undefined)
      query = query.where("break_glass", filter.breakGlass ? "is not" : "is", null);
    if (filter.reviewed !== undefined)
      query = query
        .where("break_glass", "is not", null)
        .where("review", filter.reviewed ? "is not" : "is", null);
    if (filter.visible !== undefined) {
      const pairs = [...filter.visible.apps].filter(([, envs]) => envs.size > 0);
      if (pairs.length === 0) return { items: [] };
      query = query.where((eb) =>
        eb.or(pairs.map(([app, envs]) => eb.and([eb("app", "=", app), eb("environment", "in", [...envs])]))),
      );
    }
    if (filter.cursor !== undefined) {
      const [createdAt, id] = decodeCursor(filter.cursor);
      query = query.where((eb) =>
        eb.or([
          eb("created_at", "<", createdAt),
          eb.and([eb("created_at", "=", createdAt), eb("id", "<", id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(filter.limit + 1)
      .execute();
    const items = rows.slice(0, filter.limit).map(decode);
    const last = items.at(-1);
    return rows.length > filter.limit && last !== undefined ? { items, next: encodeCursor(last) } : { items };
  }

  /**
   * {@link update} (not fenced) with `alsoWrite` in the same transaction, after the change: both
   * commit or neither does (a review row and the promotion's review summary). Listeners are told
   * once it commits. `alsoWrite` throwing rolls the change back and rethrows.
   */
  async updateWith(
    current: PromotionRecord,
    changes: PromotionChanges,
    now: number,
    alsoWrite: (tx: Kysely<Database>) => Promise<void>,
  ): Promise<PromotionRecord | undefined> {
    const updated = await this.#store.transaction(async (tx) => {
      const after = await this.update(current, changes, now, undefined, tx);
      if (after !== undefined) await alsoWrite(tx);
      return after;
    });
    if (updated !== undefined) this.#emit(updated, current);
    return updated;
  }

  /** Break-glass promotions not reviewed yet, and how many of them are past their `reviewBy` at `now`. */
  async unreviewedBreakGlass(now: number): Promise<{ open: number; overdue: number }> {
    const rows = await this.#db
      .selectFrom("promotions")
      .select("break_glass")
      .where("break_glass", "is not", null)
      .where("review", "is", null)
      .execute();
    const overdue = rows.filter((r) => (JSON.parse(r.break_glass!) as { reviewBy: number }).reviewBy < now);
    return { open: rows.length, overdue: overdue.length };
  }

  /** The gates of every waiting promotion (for the waiting-per-gate metric). */
  async waitingGates(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom("promotions")
      .select("gates")
      .where("state", "=", "waiting")
      .execute();
    return rows.map((r) => r.gates);
  }

  /** How many history entries a promotion has (tests and audits: a promotion is recorded once). */
  async historyCount(promotionId: string): Promise<number> {
    const row = await this.#db
      .selectFrom("environment_history")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("promotion_id", "=", promotionId)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
