import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import type { SigningRecord, SigningRecords } from "./service.ts";

/** Records signings in the store's `signings` table (never a token: its SHA-256). */
export function storeSigningRecords(db: Kysely<Database>, now: () => number = Date.now): SigningRecords {
  return {
    async record(entry: SigningRecord) {
      await db
        .insertInto("signings")
        .values({
          id: randomUUID(),
          at: now(),
          request_id: entry.requestId,
          issuer: entry.issuer,
          subject: entry.subject,
          token_sha256: entry.tokenSha256,
          app: entry.app,
          repository: entry.repository,
          digest: entry.digest,
          kind: entry.item.kind,
          format: entry.item.format,
          status: entry.item.status,
          key_id: entry.keyId,
          location: entry.item.location,
        })
        .execute();
    },
  };
}
