import { type Kysely, sql } from "kysely";
import { type Clock, systemClock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import type { AuditCheckpointsTable, AuditLogTable, AuditPendingTable, Database } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import { signCheckpoint } from "./checkpoint.ts";
import { entryHash } from "./hash.ts";
import type { PendingSync } from "./pending.ts";
import {
  type AuditActor,
  type AuditEntry,
  type AuditInput,
  type ChainHead,
  type CheckpointSigner,
  ENTRY_TYPES,
  type EntryType,
  type Json,
  type SignedCheckpoint,
} from "./types.ts";

/** Where features append decisions: the narrow port they take (a fake is {@link MemoryAuditSink}). */
export interface AuditSink {
  /** Queues one entry; resolves once it is committed in the chain, rejects when it could not be. */
  append(entry: AuditInput): Promise<void>;
}

/** How {@link AuditLog} runs; only `store` is required. */
export interface AuditLogOptions {
  store: Store;
  /** Signs checkpoints; without one, {@link AuditLog.createCheckpoint} throws (the CLI only reads). */
  signer?: CheckpointSigner;
  /** The checkpoints' `origin`: `server.publicUrl`, else the listen URL. */
  origin?: string;
  /** `audit.checkpoint.every`: sign a checkpoint once this many entries are new. Default 1000. */
  checkpointEvery?: number;
  /** `audit.checkpoint.interval` in ms: sign one this often when anything is new. Default 5 minutes. */
  checkpointInterval?: number;
  /** Paces the interval checkpoints (tests pass a `FakeClock`). */
  clock?: Clock;
  logger?: Logger;
  /** Most entries written in one transaction. Default 500. */
  maxBatch?: number;
  /**
   * Resolves the `sync` rows of `audit_pending` (the promotion's votes and reviews not yet in the
   * chain, see pending.ts); without it they are deleted unresolved (the CLI only reads).
   */
  sync?: PendingSync;
}

/** A normalised entry waiting for its sequence number. */
type Queued = Omit<AuditEntry, "seq" | "at" | "prev_hash" | "hash">;

type Row = AuditLogTable;

const KNOWN_TYPES: ReadonlySet<string> = new Set(ENTRY_TYPES);

/** Text that PostgreSQL can store (no NUL) and RFC 8785 can hash (no lone surrogate), cut to `max`. */
function clean(text: string, max: number): string {
  return text.toWellFormed().replaceAll("\u0000", "\uFFFD").slice(0, max);
}

/** Checks and normalises one input at append time, so one bad entry never fails a whole batch. */
function normalise(input: AuditInput): Queued {
  if (!KNOWN_TYPES.has(input.type)) throw new TypeError(`audit: unknown entry type "${input.type}"`);
  if (typeof input.actor === "string" && input.actor !== "ferry" && input.actor !== "anonymous")
    throw new TypeError(`audit: unknown actor "${input.actor}"`);
  const actor: AuditActor =
    typeof input.actor === "string"
      ? input.actor
      : {
          issuer: clean(input.actor.issuer, 512),
          subject: clean(input.actor.subject, 512),
          ...(input.actor.name === undefined ? {} : { name: clean(input.actor.name, 256) }),
        };
  // A JSON round trip drops what JSON cannot hold (undefined, functions; NaN becomes null), so what
  // is hashed is exactly what is stored and read back; strings are made well-formed so that RFC 8785
  // can hash them (a lone surrogate would otherwise fail the whole batch at hashing time).
  const data = JSON.parse(JSON.stringify(input.data ?? {}), (key: string, value: unknown) => {
    if (!key.isWellFormed()) throw new TypeError("audit: a data key is not well-formed Unicode");
    return typeof value === "string" ? value.toWellFormed() : value;
  }) as { [key: string]: Json };
  if (data === null || typeof data !== "object" || Array.isArray(data))
    throw new TypeError("audit: data must be a JSON object");
  const entry: Queued = {
    type: input.type,
    actor,
    subject: clean(input.subject, 512),
    outcome: clean(input.outcome, 64),
    reason: input.reason === undefined ? null : clean(input.reason, 1024),
    data,
  };
  return entry;
}

/** A stored row as an entry. */
function fromRow(row: AuditLogTable): AuditEntry {
  return {
    seq: Number(row.seq),
    at: Number(row.at),
    type: row.type as EntryType,
    actor: JSON.parse(row.actor) as AuditActor,
    subject: row.subject,
    outcome: row.outcome,
    reason: row.reason,
    data: JSON.parse(row.data) as { [key: string]: Json },
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}

function checkpointFromRow(row: AuditCheckpointsTable): SignedCheckpoint {
  return {
    checkpoint: { origin: row.origin, size: Number(row.size), head: row.head, at: Number(row.at) },
    body: row.body,
    signature: row.signature,
    keyId: row.key_id,
  };
}

/**
 * The audit log in the store: a hash chain of every decision (docs/evidence.md, "Audit log").
 *
 * Appends are queued and written in batches, one transaction per batch, one batch in flight per
 * process: entries that arrive while a batch is being written go into the next one, so load turns
 * into bigger batches rather than more round trips. Each transaction reads the head row — `for
 * update` on PostgreSQL, so the appends of several replicas queue on it and never fork the chain;
 * SQLite's `begin immediate` already serialises writers — then inserts the batch and moves the head.
 *
 * Checkpoints are signed every `checkpointEvery` entries (checked after each batch) and every
 * `checkpointInterval` when anything is new (see {@link AuditLog.start}).
 */
export class AuditLog implements AuditSink {
  readonly #store: Store;
  readonly #signer: CheckpointSigner | undefined;
  readonly #origin: string;
  readonly #every: number;
  readonly #interval: number;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #maxBatch: number;
  #queue: { entry: Queued; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #running: Promise<void> | undefined;
  #checkpointing: Promise<SignedCheckpoint | undefined> | undefined;
  /** The size of the last checkpoint this process knows of (undefined until read). */
  #checkpointed: number | undefined;
  /** A checkpoint due after a batch, being signed. */
  #background: Promise<void> | undefined;
  #stop: AbortController | undefined;
  #timer: Promise<void> | undefined;
  readonly #sync: PendingSync | undefined;
  /** `audit_pending` may hold rows to chain: the next batch runs even with nothing queued. */
  #pendingDue = false;

  constructor(options: AuditLogOptions) {
    this.#store = options.store;
    this.#signer = options.signer;
    this.#origin = options.origin ?? "ferry";
    this.#every = options.checkpointEvery ?? 1000;
    this.#interval = options.checkpointInterval ?? 300_000;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#sync = options.sync;
  }

  /**
   * Queues one entry (see {@link AuditSink.append}). A type outside `ENTRY_TYPES`, or data JSON
   * cannot hold, is refused at once, never in a batch with others.
   */
  append(input: AuditInput): Promise<void> {
    let entry: Queued;
    try {
      entry = normalise(input);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ entry, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Chains what `audit_pending` holds (rows written with promotion changes, by this process or
   * another, or left by one that died) in the next batch; resolves once it is written (or failed).
   */
  chainPending(): Promise<void> {
    this.#pendingDue = true;
    this.#kick();
    return this.flush();
  }

  /** Resolves once every entry queued before the call is written (or failed). */
  async flush(): Promise<void> {
    while (this.#running !== undefined || this.#queue.length > 0 || this.#pendingDue) {
      if (this.#running === undefined) this.#kick();
      await this.#running;
    }
  }

  #kick(): void {
    if (this.#running !== undefined) return;
    // One turn of the event loop gathers what arrives together into the first batch.
    this.#running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#drain())
      .finally(() => {
        this.#running = undefined;
        if (this.#queue.length > 0 || this.#pendingDue) this.#kick();
      });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#pendingDue) {
      const pending = this.#pendingDue;
      this.#pendingDue = false;
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        const { head, more } = await this.#write(batch.map((b) => b.entry));
        for (const b of batch) b.resolve();
        // A full page of pending rows: there may be more (a failed batch waits for the next kick).
        if (more) this.#pendingDue = true;
        this.#maybeCheckpoint(head);
      } catch (err) {
        for (const b of batch) b.reject(err);
        if (pending) this.#logger?.error({ err }, "chaining pending audit entries failed");
      }
    }
  }

  /**
   * The entries of up to `maxBatch` rows of `audit_pending`, in their order, read in the appender's
   * transaction (after the head lock: no other appender reads them meanwhile). A `sync` row is
   * resolved once per promotion and batch. A row whose entry cannot be normalised (a bug) is logged
   * and dropped rather than left to block every later batch.
   */
  async #pending(tx: Kysely<Database>) {
    const rows: AuditPendingTable[] = await tx
      .selectFrom("audit_pending")
      .selectAll()
      .orderBy("created_at")
      .orderBy("promotion_id")
      .orderBy("version")
      .orderBy("ord")
      .limit(this.#maxBatch)
      .execute();
    const entries: Queued[] = [];
    const synced = new Set<string>();
    for (const row of rows) {
      try {
        if (row.kind === "entry") entries.push(normalise(JSON.parse(row.entry) as AuditInput));
        else if (row.kind === "sync" && this.#sync !== undefined && !synced.has(row.promotion_id)) {
          synced.add(row.promotion_id);
          for (const input of await this.#sync(tx, row.promotion_id)) entries.push(normalise(input));
        }
      } catch (err) {
        if (!(err instanceof TypeError || err instanceof SyntaxError)) throw err;
        this.#logger?.error(
          { err, pending: row.id, promotion: row.promotion_id },
          "dropped a bad pending audit entry",
        );
      }
    }
    return { ids: rows.map((r) => r.id), entries, more: rows.length >= this.#maxBatch };
  }

  /**
   * Writes one batch in one transaction, after the head it locked: first the rows of
   * `audit_pending` (deleted in the same transaction; whoever wrote them, so a replica that died
   * leaves nothing behind for long), then `queued`. Returns the new head, and whether more pending
   * rows may be left.
   */
  #write(queued: readonly Queued[]): Promise<{ head: ChainHead; more: boolean }> {
    const store = this.#store;
    return store.transaction(async (tx) => {
      const select = tx.selectFrom("audit_head").select(["seq", "hash"]).where("id", "=", 1);
      const head = await (store.engine === "postgres"
        ? select.forUpdate()
        : select
      ).executeTakeFirstOrThrow();
      const fromPending = await this.#pending(tx);
      const entries = [...fromPending.entries, ...queued];
      let seq = Number(head.seq);
      let prev = head.hash;
      if (fromPending.ids.length > 0)
        await tx.deleteFrom("audit_pending").where("id", "in", fromPending.ids).execute();
      if (entries.length === 0) return { head: { size: seq, hash: prev }, more: fromPending.more };
      const now = await sql<{ now: number }>`select ${store.nowMs()} as now`.execute(tx);
      const at = Number(now.rows[0]!.now);
      const rows: Row[] = [];
      for (const e of entries) {
        seq += 1;
        const entry = { seq, at, ...e, prev_hash: prev };
        const hash = entryHash(entry);
        rows.push({
          seq,
          at,
          type: e.type,
          actor: JSON.stringify(e.actor),
          subject: e.subject,
          outcome: e.outcome,
          reason: e.reason,
          data: JSON.stringify(e.data),
          prev_hash: prev,
          hash,
        });
        prev = hash;
      }
      await tx.insertInto("audit_log").values(rows).execute();
      await tx.updateTable("audit_head").set({ seq, hash: prev }).where("id", "=", 1).execute();
      return { head: { size: seq, hash: prev }, more: fromPending.more };
    });
  }

  /** Up to `limit` entries after `afterSeq`, in order. */
  async read(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    const rows = await this.#store.db
      .selectFrom("audit_log")
      .selectAll()
      .where("seq", ">", afterSeq)
      .orderBy("seq")
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  /** The chain's committed head. */
  async head(): Promise<ChainHead> {
    const row = await this.#store.db
      .selectFrom("audit_head")
      .select(["seq", "hash"])
      .where("id", "=", 1)
      .executeTakeFirstOrThrow();
    return { size: Number(row.seq), hash: row.hash };
  }

  /** Every entry about `subject` (a promotion id, a digest, …), in order. */
  async entriesFor(subject: string): Promise<AuditEntry[]> {
    const rows = await this.#store.db
      .selectFrom("audit_log")
      .selectAll()
      .where("subject", "=", subject)
      .orderBy("seq")
      .execute();
    return rows.map(fromRow);
  }

  /** The latest signed checkpoint, if any. */
  async checkpoint(): Promise<SignedCheckpoint | undefined> {
    const row = await this.#store.db
      .selectFrom("audit_checkpoints")
      .selectAll()
      .orderBy("size", "desc")
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : checkpointFromRow(row);
  }

  /** Every stored checkpoint, oldest first (`ferry audit verify` checks each against the chain). */
  async checkpoints(): Promise<SignedCheckpoint[]> {
    const rows = await this.#store.db.selectFrom("audit_checkpoints").selectAll().orderBy("size").execute();
    return rows.map(checkpointFromRow);
  }

  /**
   * Signs a checkpoint of the committed head now, unless nothing is new since the latest one (its
   * own `checkpoint` entry does not count); then appends a `checkpoint` entry naming it. Returns the
   * new checkpoint, or undefined when none was due. One at a time per process; replicas that sign
   * the same size keep the first.
   */
  createCheckpoint(): Promise<SignedCheckpoint | undefined> {
    this.#checkpointing ??= this.#createCheckpoint().finally(() => {
      this.#checkpointing = undefined;
    });
    return this.#checkpointing;
  }

  async #createCheckpoint(): Promise<SignedCheckpoint | undefined> {
    const signer = this.#signer;
    if (signer === undefined) throw new Error("audit: no signer, cannot sign a checkpoint");
    const db = this.#store.db;
    const head = await this.head();
    const last = await this.checkpoint();
    const lastSize = last?.checkpoint.size ?? 0;
    this.#checkpointed = Math.max(this.#checkpointed ?? 0, lastSize);
    if (head.size <= lastSize) return undefined;
    if (head.size === lastSize + 1 && last !== undefined) {
      const top = await db
        .selectFrom("audit_log")
        .select("type")
        .where("seq", "=", head.size)
        .executeTakeFirst();
      if (top?.type === "checkpoint") return undefined;
    }
    const now = await sql<{ now: number }>`select ${this.#store.nowMs()} as now`.execute(db);
    const signed = await signCheckpoint(
      { origin: this.#origin, size: head.size, head: head.hash, at: Number(now.rows[0]!.now) },
      signer,
    );
    await db
      .insertInto("audit_checkpoints")
      .values({
        size: head.size,
        at: signed.checkpoint.at,
        origin: signed.checkpoint.origin,
        head: head.hash,
        body: signed.body,
        signature: signed.signature,
        key_id: signed.keyId,
      })
      .onConflict((oc) => oc.column("size").doNothing())
      .execute();
    this.#checkpointed = Math.max(this.#checkpointed, head.size);
    await this.append({
      type: "checkpoint",
      actor: "ferry",
      subject: `checkpoint/${head.size}`,
      outcome: "signed",
      data: { size: head.size, head: head.hash, origin: this.#origin, keyId: signed.keyId },
    });
    return signed;
  }

  /** After a batch: signs a checkpoint in the background once `checkpointEvery` entries are new. */
  #maybeCheckpoint(head: ChainHead): void {
    if (this.#signer === undefined || this.#background !== undefined) return;
    if (this.#checkpointed !== undefined && head.size - this.#checkpointed < this.#every) return;
    this.#background = (async () => {
      this.#checkpointed ??= (await this.checkpoint())?.checkpoint.size ?? 0;
      if (head.size - this.#checkpointed >= this.#every) await this.createCheckpoint();
    })()
      .catch((err: unknown) => this.#logger?.error({ err }, "signing an audit checkpoint failed"))
      .finally(() => {
        this.#background = undefined;
      });
  }

  /**
   * Chains what `audit_pending` holds (left by a process that stopped before its appender ran),
   * and starts the interval checkpoints (every `checkpointInterval`, when anything is new; each
   * chains the pending rows first, so that rows of another replica that died are chained too).
   */
  start(): void {
    if (this.#stop !== undefined) return;
    void this.chainPending();
    if (this.#signer === undefined) return;
    const stop = new AbortController();
    this.#stop = stop;
    this.#timer = (async () => {
      while (!stop.signal.aborted) {
        try {
          await this.#clock.sleep(this.#interval, stop.signal);
        } catch {
          return;
        }
        await this.chainPending();
        await this.createCheckpoint().catch((err: unknown) =>
          this.#logger?.error({ err }, "signing an audit checkpoint failed"),
        );
      }
    })();
  }

  /** Stops the interval checkpoints and writes what is queued (shutdown). */
  async close(): Promise<void> {
    this.#stop?.abort();
    await this.#timer;
    await this.flush();
    await this.#background;
    await this.#checkpointing?.catch(() => undefined);
    await this.flush();
  }
}

/** An in-memory {@link AuditSink} for service tests: keeps what was appended, in order. */
export class MemoryAuditSink implements AuditSink {
  readonly entries: AuditInput[] = [];

  async append(entry: AuditInput): Promise<void> {
    normalise(entry);
    this.entries.push(entry);
  }
}
