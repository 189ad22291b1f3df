import type { Kysely, Selectable } from "kysely";
import type { HeldLease } from "../store/leases.ts";
import type { Database, NotificationOutboxTable } from "../store/schema.ts";
import type { NotificationEvent } from "./events.ts";

/** Where a queued delivery is: waiting for (another) attempt, done after a 2xx, or given up. */
export type OutboxState = "pending" | "delivered" | "dead";

/** One queued delivery of one event to one receiver. */
export interface OutboxEntry {
  /** Also the Standard Webhooks `webhook-id`: the same on every attempt, for de-duplication. */
  id: string;
  promotionId: string;
  event: NotificationEvent;
  receiver: string;
  format: "standard" | "slack";
  /** The rendered body, sent as is on every attempt. */
  body: string;
  state: OutboxState;
  /** Attempts made so far. */
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  lastOutcome?: string;
  finishedAt?: number;
}

/** What a finished attempt changes on its entry. */
export interface OutboxSettlement {
  state: OutboxState;
  attempts: number;
  nextAttemptAt: number;
  lastOutcome: string;
  finishedAt?: number;
}

type Row = Selectable<NotificationOutboxTable>;

function decode(row: Row): OutboxEntry {
  return {
    id: row.id,
    promotionId: row.promotion_id,
    event: row.event as NotificationEvent,
    receiver: row.receiver,
    format: row.format as OutboxEntry["format"],
    body: row.body,
    state: row.state as OutboxState,
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
    nextAttemptAt: Number(row.next_attempt_at),
    ...(row.last_outcome === null ? {} : { lastOutcome: row.last_outcome }),
    ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
  };
}

/**
 * The `notification_outbox` table. Entries are inserted inside the transaction of the promotion
 * change they tell of ({@link NotificationOutbox.enqueue} with that transaction), so an event is
 * queued exactly when its change commits; the delivery worker settles them under its fenced lease.
 */
export class NotificationOutbox {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Inserts new pending entries through `tx` (the promotion change's transaction). */
  async enqueue(
    tx: Kysely<Database>,
    entries: Pick<
      OutboxEntry,
      "id" | "promotionId" | "event" | "receiver" | "format" | "body" | "createdAt"
    >[],
  ): Promise<void> {
    if (entries.length === 0) return;
    await tx
      .insertInto("notification_outbox")
      .values(
        entries.map((e) => ({
          id: e.id,
          promotion_id: e.promotionId,
          event: e.event,
          receiver: e.receiver,
          format: e.format,
          body: e.body,
          state: "pending",
          attempts: 0,
          created_at: e.createdAt,
          next_attempt_at: e.createdAt,
          last_outcome: null,
          finished_at: null,
        })),
      )
      .execute();
  }

  /** Pending entries due at `now`, earliest first. */
  async due(now: number, limit: number): Promise<OutboxEntry[]> {
    const rows = await this.#db
      .selectFrom("notification_outbox")
      .selectAll()
      .where("state", "=", "pending")
      .where("next_attempt_at", "<=", now)
      .orderBy("next_attempt_at")
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map(decode);
  }

  /** When the earliest pending entry is due, if any. */
  async nextDue(): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom("notification_outbox")
      .select((eb) => eb.fn.min("next_attempt_at").as("at"))
      .where("state", "=", "pending")
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  /** How many entries wait for delivery (the pending gauge; shared by every replica). */
  async pendingCount(): Promise<number> {
    const row = await this.#db
      .selectFrom("notification_outbox")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("state", "=", "pending")
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Records an attempt's outcome on `entry`, only while `lease` is held and the entry is still the
   * pending one with `entry.attempts` attempts (so a worker that lost its lease, or raced another,
   * changes nothing). True when it was recorded.
   */
  async settle(entry: OutboxEntry, change: OutboxSettlement, lease: HeldLease): Promise<boolean> {
    return lease.fenced(
      this.#db
        .updateTable("notification_outbox")
        .set({
          state: change.state,
          attempts: change.attempts,
          next_attempt_at: change.nextAttemptAt,
          last_outcome: change.lastOutcome,
          finished_at: change.finishedAt ?? null,
        })
        .where("id", "=", entry.id)
        .where("state", "=", "pending")
        .where("attempts", "=", entry.attempts),
    );
  }

  /** The entries of one promotion, oldest first (tests and operators). */
  async forPromotion(promotionId: string): Promise<OutboxEntry[]> {
    const rows = await this.#db
      .selectFrom("notification_outbox")
      .selectAll()
      .where("promotion_id", "=", promotionId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(decode);
  }
}
