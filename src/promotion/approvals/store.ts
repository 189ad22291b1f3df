import type { Kysely, Selectable } from "kysely";
import type { ApprovalsTable, Database } from "../../store/schema.ts";
import type { Store } from "../../store/store.ts";
import type { ApprovalVote, Decision } from "./tally.ts";

type Row = Selectable<ApprovalsTable>;

function decode(row: Row): ApprovalVote {
  return {
    id: row.id,
    promotionId: row.promotion_id,
    app: row.app,
    digest: row.digest,
    environment: row.environment,
    issuer: row.issuer,
    subject: row.subject,
    ...(row.name === null ? {} : { name: row.name }),
    decision: row.decision as Decision,
    ...(row.comment === null ? {} : { comment: row.comment }),
    groups: JSON.parse(row.groups),
    links: JSON.parse(row.links),
    policyHash: row.policy_hash.trim(),
    createdAt: Number(row.created_at),
    decidedAt: Number(row.updated_at),
  };
}

function encode(vote: ApprovalVote): Row {
  return {
    id: vote.id,
    promotion_id: vote.promotionId,
    app: vote.app,
    digest: vote.digest,
    environment: vote.environment,
    issuer: vote.issuer,
    subject: vote.subject,
    name: vote.name ?? null,
    decision: vote.decision,
    comment: vote.comment ?? null,
    groups: JSON.stringify(vote.groups),
    links: JSON.stringify(vote.links),
    policy_hash: vote.policyHash,
    created_at: vote.createdAt,
    updated_at: vote.decidedAt,
  };
}

/** The `approvals` table: one vote per person (issuer, subject) and promotion. */
export class ApprovalStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #db(): Kysely<Database> {
    return this.#store.db;
  }

  /** The votes of one promotion, oldest first. */
  async forPromotion(promotionId: string): Promise<ApprovalVote[]> {
    const rows = await this.#db
      .selectFrom("approvals")
      .selectAll()
      .where("promotion_id", "=", promotionId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(decode);
  }

  /** The votes of several promotions, by promotion id. */
  async forPromotions(ids: readonly string[]): Promise<Map<string, ApprovalVote[]>> {
    const out = new Map<string, ApprovalVote[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    const rows = await this.#db
      .selectFrom("approvals")
      .selectAll()
      .where("promotion_id", "in", [...ids])
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    for (const row of rows) out.get(row.promotion_id)?.push(decode(row));
    return out;
  }

  /**
   * Stores `vote` as this person's vote on its promotion: inserts it, or replaces their earlier
   * vote (keeping its id and first time). One transaction, so two votes of the same person racing
   * leave one row (the unique index on promotion, issuer and subject holds the line).
   */
  async put(vote: ApprovalVote, db?: Kysely<Database>): Promise<ApprovalVote> {
    // Inside the caller's transaction (the vote and its promotion change commit together), or its own.
    if (db !== undefined) return this.#put(vote, db);
    return this.#store.transaction((tx) => this.#put(vote, tx));
  }

  async #put(vote: ApprovalVote, tx: Kysely<Database>): Promise<ApprovalVote> {
    {
      const existing = await tx
        .selectFrom("approvals")
        .selectAll()
        .where("promotion_id", "=", vote.promotionId)
        .where("issuer", "=", vote.issuer)
        .where("subject", "=", vote.subject)
        .executeTakeFirst();
      if (existing === undefined) {
        await tx.insertInto("approvals").values(encode(vote)).execute();
        return vote;
      }
      const merged: ApprovalVote = { ...vote, id: existing.id, createdAt: Number(existing.created_at) };
      const { id: _id, created_at: _c, ...changes } = encode(merged);
      await tx.updateTable("approvals").set(changes).where("id", "=", existing.id).execute();
      return merged;
    }
  }
}
