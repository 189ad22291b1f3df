import type { Kysely } from "kysely";
import type { AuditSink } from "../audit/log.ts";
import { newRecordId as recordId } from "../common/ids.ts";
import { CompiledInsert } from "../store/compiled-insert.ts";
import type { Database, TokenExchangesTable } from "../store/schema.ts";
import { WriteBatcher } from "../store/write-batcher.ts";

/** One token exchange, granted or refused. Never the token itself: its SHA-256. */
export interface ExchangeRecord {
  /** Epoch milliseconds. */
  at: number;
  requestId: string;
  /** The verified issuer's URL; absent when the token did not verify. */
  issuer?: string | undefined;
  subject?: string | undefined;
  tokenSha256?: string | undefined;
  /** The credential asked for (the exchange's `audience`), as asked. */
  credential?: string | undefined;
  decision: "granted" | "refused";
  /** `granted`, or the refusal's reason code. */
  reason: string;
  issuedId?: string | undefined;
  expiresAt?: number | undefined;
}

/** Where exchanges are recorded. */
export interface ExchangeRecorder {
  record(entry: ExchangeRecord): Promise<void>;
}

const cut = (value: string | undefined, max: number) => (value === undefined ? null : value.slice(0, max));

/** One `token_exchanges` row (the store's table type), as the batcher queues it. */
type ExchangeRow = TokenExchangesTable & Record<string, unknown>;

const COLUMNS = [
  "id",
  "at",
  "request_id",
  "issuer",
  "subject",
  "token_sha256",
  "credential",
  "decision",
  "reason",
  "issued_id",
  "expires_at",
] as const;

/**
 * Records exchanges in the `token_exchanges` table (both engines); the records of one event-loop
 * turn are written as one multi-row insert (see {@link WriteBatcher}). With an audit log, each is
 * also a `token_exchange` entry of it that links the row by id (`data.exchangeId`); `record`
 * resolves once both are written, so a granted credential is never handed out unrecorded.
 */
export class StoreExchangeRecorder implements ExchangeRecorder {
  readonly #batcher: WriteBatcher<ExchangeRow, undefined>;
  readonly #audit: AuditSink | undefined;

  constructor(db: Kysely<Database>, audit?: AuditSink) {
    this.#audit = audit;
    const insert = new CompiledInsert(db, COLUMNS, (rows: readonly ExchangeRow[]) =>
      db.insertInto("token_exchanges").values([...rows]),
    );
    this.#batcher = new WriteBatcher(async (rows) => {
      await insert.execute(rows);
      return rows.map(() => undefined);
    });
  }

  async record(entry: ExchangeRecord): Promise<void> {
    const id = recordId();
    const row = this.#batcher.submit({
      id,
      at: entry.at,
      request_id: entry.requestId.slice(0, 128),
      issuer: cut(entry.issuer, 512),
      subject: cut(entry.subject, 512),
      token_sha256: entry.tokenSha256 ?? null,
      credential: cut(entry.credential, 128),
      decision: entry.decision,
      reason: entry.reason.slice(0, 64),
      issued_id: cut(entry.issuedId, 128),
      expires_at: entry.expiresAt ?? null,
    });
    if (this.#audit === undefined) {
      await row;
      return;
    }
    const audited = this.#audit.append({
      type: "token_exchange",
      actor:
        entry.issuer !== undefined && entry.subject !== undefined
          ? { issuer: entry.issuer, subject: entry.subject }
          : "anonymous",
      subject: entry.credential ?? "",
      outcome: entry.decision,
      reason: entry.decision === "granted" ? undefined : entry.reason,
      data: {
        exchangeId: id,
        requestId: entry.requestId,
        tokenSha256: entry.tokenSha256,
        issuedId: entry.issuedId,
        expiresAt: entry.expiresAt,
      },
    });
    // Both settle before either failure is reported, so no write is left unobserved.
    const [r, a] = await Promise.allSettled([row, audited]);
    if (r.status === "rejected") throw r.reason;
    if (a.status === "rejected") throw a.reason;
  }
}

/** An in-memory {@link ExchangeRecorder} for service tests. */
export class MemoryExchangeRecorder implements ExchangeRecorder {
  readonly records: ExchangeRecord[] = [];

  async record(entry: ExchangeRecord): Promise<void> {
    this.records.push(entry);
  }
}
