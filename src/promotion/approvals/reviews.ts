/**
 * Reviews of break-glass promotions, after the fact: by an eligible approver of the environment who
 * is not the requester (the approvals' own eligibility rule, `{purpose: "review"}`: state is not
 * checked). Several people may review; the first review closes it; the same person again gets
 * their first review back. A review after `breakGlass.reviewBy` is accepted and marked late.
 */
import type { Kysely } from "kysely";
import type { Clock } from "../../common/clock.ts";
import { FerryError } from "../../common/errors.ts";
import { newRecordId } from "../../common/ids.ts";
import type { Logger } from "../../common/logger.ts";
import type { Principal } from "../../identity/principal.ts";
import type { Database } from "../../store/schema.ts";
import type { Store } from "../../store/store.ts";
import type { PromotionRecord, ReviewSummary } from "../record.ts";
import type { PromotionStore } from "../store.ts";
import { approverEligibility, type Eligibility } from "./eligibility.ts";
import type { CompiledApprovalRules } from "./rules.ts";

/** The longest review comment accepted, in characters. */
export const REVIEW_COMMENT_MAX = 2000;

/** One review of a break-glass promotion (times in epoch ms). */
export interface Review {
  id: string;
  promotion: string;
  by: { issuer: string; subject: string; name?: string };
  comment: string;
  at: number;
  /** Given after the promotion's `breakGlass.reviewBy`. */
  late: boolean;
}

/** May `principal` review `promotion`? */
export type ReviewerEligibility = (principal: Principal, promotion: PromotionRecord) => Eligibility;

/**
 * The approvals' eligibility for reviews: the environment's approvers (group, separation of duties),
 * whatever the promotion's state. An environment without `approvals` has no reviewers.
 */
export function reviewerEligibility(
  approvals: ReadonlyMap<string, CompiledApprovalRules>,
): ReviewerEligibility {
  return (principal, promotion) => {
    const rules = approvals.get(promotion.environment);
    if (rules === undefined)
      return {
        eligible: false,
        reason: "no_approvals_configured",
        message: `${promotion.environment} has no approvers (environments[].approvals) to review it`,
      };
    return approverEligibility(rules, principal, promotion, { purpose: "review" });
  };
}

/** What {@link BreakGlassReviews} is built from. */
export interface BreakGlassReviewsDeps {
  store: PromotionStore;
  /** The database, for the `promotion_reviews` table. */
  database: Store;
  clock: Clock;
  eligibility: ReviewerEligibility;
  logger?: Logger | undefined;
}

/** The same person's review was inserted concurrently: roll back and answer with theirs. */
class AlreadyReviewed extends Error {}

/** Records reviews of break-glass promotions: a review row and the promotion's summary, in one transaction. */
export class BreakGlassReviews {
  readonly #deps: BreakGlassReviewsDeps;

  constructor(deps: BreakGlassReviewsDeps) {
    this.#deps = deps;
  }

  /**
   * Reviews `promotion` (which `principal` may read) with `comment`. 409 `not_break_glass` for an
   * ordinary promotion, 403 with the eligibility's reason for who may not review it, 400
   * `review_comment_missing` for an empty comment. `created: false` with the caller's earlier
   * review when they reviewed it already.
   */
  async review(
    principal: Principal,
    promotion: PromotionRecord,
    comment: string,
  ): Promise<{ review: Review; created: boolean }> {
    if (promotion.breakGlass === undefined)
      throw new FerryError("conflict", "only break-glass promotions are reviewed", {
        extra: { reason: "not_break_glass" },
      });
    const eligible = this.#deps.eligibility(principal, promotion);
    if (!eligible.eligible)
      throw new FerryError("forbidden", eligible.message, { extra: { reason: eligible.reason } });
    const text = comment.trim();
    if (text === "" || text.length > REVIEW_COMMENT_MAX)
      throw new FerryError(
        "validation_failed",
        `a review needs a comment of 1-${REVIEW_COMMENT_MAX} characters`,
        {
          extra: { reason: "review_comment_missing" },
        },
      );
    const earlier = await this.#find(promotion.id, principal);
    if (earlier !== undefined) return { review: earlier, created: false };

    const { store, clock } = this.#deps;
    let current: PromotionRecord | undefined = promotion;
    // The worker may change the promotion meanwhile (a step finishing): re-read and try again.
    for (let attempt = 0; attempt < 5 && current !== undefined; attempt++) {
      const now = clock.now();
      const name = principal.kind === "human" ? principal.name : undefined;
      const review: Review = {
        id: newRecordId(),
        promotion: current.id,
        by: { issuer: principal.issuer.name, subject: principal.subject, ...(name ? { name } : {}) },
        comment: text,
        at: now,
        late: now > promotion.breakGlass.reviewBy,
      };
      const summary: ReviewSummary = current.review
        ? { ...current.review, count: current.review.count + 1 }
        : { by: review.by, at: review.at, late: review.late, comment: review.comment, count: 1 };
      try {
        const updated = await store.updateWith(current, { review: summary }, now, (tx) =>
          insertReview(tx, review),
        );
        if (updated !== undefined) {
          this.#deps.logger?.info(
            {
              promotion: current.id,
              app: current.app,
              environment: current.environment,
              reviewer: review.by,
              late: review.late,
              first: summary.count === 1,
            },
            "break-glass promotion reviewed",
          );
          return { review, created: true };
        }
      } catch (err) {
        if (!(err instanceof AlreadyReviewed)) throw err;
        const theirs = await this.#find(promotion.id, principal);
        if (theirs !== undefined) return { review: theirs, created: false };
        throw err;
      }
      current = await store.get(promotion.id);
    }
    throw new FerryError("conflict", "the promotion keeps changing; try again");
  }

  async #find(promotionId: string, principal: Principal): Promise<Review | undefined> {
    const row = await this.#deps.database.db
      .selectFrom("promotion_reviews")
      .selectAll()
      .where("promotion_id", "=", promotionId)
      .where("issuer", "=", principal.issuer.name)
      .where("subject", "=", principal.subject)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return {
      id: row.id,
      promotion: row.promotion_id,
      by: { issuer: row.issuer, subject: row.subject, ...(row.name === null ? {} : { name: row.name }) },
      comment: row.comment,
      at: Number(row.at),
      late: Number(row.late) === 1,
    };
  }
}

async function insertReview(tx: Kysely<Database>, review: Review): Promise<void> {
  const inserted = await tx
    .insertInto("promotion_reviews")
    .values({
      id: review.id,
      promotion_id: review.promotion,
      issuer: review.by.issuer,
      subject: review.by.subject,
      name: review.by.name ?? null,
      comment: review.comment,
      at: review.at,
      late: review.late ? 1 : 0,
    })
    .onConflict((oc) => oc.columns(["promotion_id", "issuer", "subject"]).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) throw new AlreadyReviewed();
}
