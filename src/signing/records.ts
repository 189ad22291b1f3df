import type { AuditSink } from "../audit/log.ts";
import { type Clock, systemClock } from "../common/clock.ts";
import { newRecordId } from "../common/ids.ts";
import type { SigningsTable } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import type { SignedItem, SigningRecord, SigningRecords } from "./service.ts";

/**
 * Records signings in the store's `signings` table (never a token: its SHA-256), one row per item,
 * all the items of a request in one transaction: a crash or a failed insert leaves none of them, not
 * a partial record. Ids are UUIDv7, like every record table's. With an audit log, each row is also
 * a `signing` entry of it, appended once the rows are committed, linking the row by id
 * (`data.signingId`).
 */
export function storeSigningRecords(
  store: Pick<Store, "transaction">,
  clock: Clock = systemClock,
  audit?: AuditSink,
): SigningRecords {
  return {
    async record(entry: SigningRecord) {
      if (entry.items.length === 0) return;
      const at = clock.now();
      const rows = entry.items.map((item) => row(entry, item, at));
      await store.transaction(async (tx) => {
        for (const r of rows) {
          await tx.insertInto("signings").values(r).execute();
        }
      });
      if (audit === undefined) return;
      await Promise.all(
        rows.map((r) =>
          audit.append({
            type: "signing",
            actor: { issuer: r.issuer, subject: r.subject },
            subject: r.digest,
            outcome: r.status,
            data: {
              signingId: r.id,
              requestId: r.request_id,
              app: r.app,
              repository: r.repository,
              kind: r.kind,
              format: r.format,
              location: r.location,
              keyId: r.key_id,
              tokenSha256: r.token_sha256,
            },
          }),
        ),
      );
    },
  };
}

function row(entry: SigningRecord, item: SignedItem, at: number): SigningsTable {
  return {
    id: newRecordId(),
    at,
    request_id: entry.requestId,
    issuer: entry.issuer,
    subject: entry.subject,
    token_sha256: entry.tokenSha256,
    app: entry.app,
    repository: entry.repository,
    digest: entry.digest,
    kind: item.kind,
    format: item.format,
    status: item.status,
    key_id: entry.keyId,
    location: item.location,
  };
}
