/**
 * Promotion decisions into the audit log without a hole (docs/evidence.md, "Promotion decisions"):
 * a write hook puts the entries of each promotion change into `audit_pending` in the change's own
 * transaction; the audit log's appender later chains them and deletes them in one transaction. So
 * a change commits with its entries or not at all, and a crash in between leaves rows that the
 * next appender (at the next start, or any replica's next batch) chains. The promotion's
 * transaction never touches the chain's head: promotion writes do not queue on its lock.
 */
import type { Kysely } from "kysely";
import { newRecordId } from "../common/ids.ts";
import type { PromotionRecord } from "../promotion/record.ts";
import type { PromotionStore } from "../promotion/store.ts";
import type { AuditPendingTable, Database } from "../store/schema.ts";
import { actorByName, bounded, type IssuerUrls, promotionAuditItems } from "./promotion-entries.ts";
import type { AuditInput } from "./types.ts";

/** What `AuditLog` asks when it chains a `sync` row: the promotion's votes and reviews not yet in the chain. */
export type PendingSync = (tx: Kysely<Database>, promotionId: string) => Promise<AuditInput[]>;

/** The rows of one change, in order. */
export function pendingRows(
  after: PromotionRecord,
  before: PromotionRecord | undefined,
  issuers: IssuerUrls,
) {
  return promotionAuditItems(after, before, issuers).map(
    (item, ord): AuditPendingTable => ({
      id: newRecordId(),
      promotion_id: after.id,
      version: after.version,
      ord,
      created_at: after.updatedAt,
      kind: item.kind,
      entry: item.kind === "entry" ? JSON.stringify(item.entry) : "{}",
    }),
  );
}

/**
 * Hooks the audit log into the promotion store: a write hook that inserts each change's entries
 * into `audit_pending` in its transaction, and a change listener that asks the appender to chain
 * them once the change has committed (`chain`).
 */
export function auditPromotionWrites(
  promotions: Pick<PromotionStore, "onWrite" | "onChange">,
  issuers: IssuerUrls,
  chain: () => void,
): void {
  promotions.onWrite(async (tx, after, before) => {
    const rows = pendingRows(after, before, issuers);
    if (rows.length > 0) await tx.insertInto("audit_pending").values(rows).execute();
  });
  promotions.onChange(() => chain());
}

/** A vote's key in the chain: a vote row is replaced when its person votes again. */
const voteKey = (id: string, decidedAt: number) => `vote:${id}@${decidedAt}`;
const reviewKey = (id: string) => `review:${id}`;

/**
 * The keys of the votes and reviews already chained for a promotion, from the `approval` and
 * `review` entries about it (`data.vote` + `data.decidedAt`, `data.review`).
 */
function chainedKeys(rows: readonly { type: string; data: string }[]): Set<string> {
  const keys = new Set<string>();
  for (const row of rows) {
    const data = JSON.parse(row.data) as Record<string, unknown>;
    if (row.type === "approval" && typeof data.vote === "string")
      keys.add(voteKey(data.vote, Number(data.decidedAt)));
    if (row.type === "review" && typeof data.review === "string") keys.add(reviewKey(data.review));
  }
  return keys;
}

/**
 * The {@link PendingSync} over the `approvals` and `promotion_reviews` tables. Run by the appender
 * inside its transaction, after it locked the head: one appender at a time, so a vote or review is
 * chained once. Approve votes only: a reject ends the promotion, and its `rejection` entry comes
 * from that change (the reject vote row is written after it).
 */
export function pendingSync(issuers: IssuerUrls): PendingSync {
  return async (tx, promotionId) => {
    const [chained, votes, reviews] = await Promise.all([
      tx
        .selectFrom("audit_log")
        .select(["type", "data"])
        .where("subject", "=", promotionId)
        .where("type", "in", ["approval", "review"])
        .execute(),
      tx
        .selectFrom("approvals")
        .selectAll()
        .where("promotion_id", "=", promotionId)
        .where("decision", "=", "approve")
        .orderBy("updated_at")
        .orderBy("id")
        .execute(),
      tx
        .selectFrom("promotion_reviews")
        .selectAll()
        .where("promotion_id", "=", promotionId)
        .orderBy("at")
        .orderBy("id")
        .execute(),
    ]);
    const seen = chainedKeys(chained);
    const out: AuditInput[] = [];
    for (const v of votes) {
      if (seen.has(voteKey(v.id, Number(v.updated_at)))) continue;
      out.push({
        type: "approval",
        actor: actorByName({ issuer: v.issuer, subject: v.subject, name: v.name ?? undefined }, issuers),
        subject: promotionId,
        outcome: "approved",
        data: {
          vote: v.id,
          decidedAt: Number(v.updated_at),
          app: v.app,
          environment: v.environment,
          digest: v.digest,
          groups: JSON.parse(v.groups) as string[],
          policyHash: v.policy_hash.trim(),
          ...(v.comment === null ? {} : { comment: bounded(v.comment) }),
        },
      });
    }
    for (const r of reviews) {
      if (seen.has(reviewKey(r.id))) continue;
      const late = Number(r.late) === 1;
      out.push({
        type: "review",
        actor: actorByName({ issuer: r.issuer, subject: r.subject, name: r.name ?? undefined }, issuers),
        subject: promotionId,
        outcome: "reviewed",
        ...(late ? { reason: "late" } : {}),
        data: { review: r.id, at: Number(r.at), late, comment: bounded(r.comment) },
      });
    }
    return out;
  };
}
