import { randomUUID } from "node:crypto";
import type { Insertable, Kysely } from "kysely";
import { WriteBatcher } from "../identity/write-batcher.ts";
import type { Database, TokenExchangesTable } from "../store/schema.ts";

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

/**
 * Records exchanges in the `token_exchanges` table (both engines); the records of one event-loop
 * turn are written as one multi-row insert (see {@link WriteBatcher}).
 */
export class StoreExchangeRecorder implements ExchangeRecorder {
  readonly #batcher: WriteBatcher<Insertable<TokenExchangesTable>, undefined>;

  constructor(db: Kysely<Database>) {
    this.#batcher = new WriteBatcher(async (rows) => {
      await db
        .insertInto("token_exchanges")
        .values([...rows])
        .execute();
      return rows.map(() => undefined);
    });
  }

  async record(entry: ExchangeRecord): Promise<void> {
    await this.#batcher.submit({
      id: randomUUID(),
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
  }
}

/** An in-memory {@link ExchangeRecorder} for service tests. */
export class MemoryExchangeRecorder implements ExchangeRecorder {
  readonly records: ExchangeRecord[] = [];

  async record(entry: ExchangeRecord): Promise<void> {
    this.records.push(entry);
  }
}
