import type { Kysely } from "kysely";
import type { Clock } from "../../common/clock.ts";
import { FerryError } from "../../common/errors.ts";
import { newRecordId } from "../../common/ids.ts";
import type { Logger } from "../../common/logger.ts";
import type { HumanPrincipal, Principal } from "../../identity/principal.ts";
import type { Database } from "../../store/schema.ts";
import type { PromotionPolicies } from "../policies.ts";
import type { PromotionRecord } from "../record.ts";
import { transition } from "../states.ts";
import type { PromotionStore } from "../store.ts";
import { approverEligibility, voteStateEligibility } from "./eligibility.ts";
import { linksOf } from "./links.ts";
import type { ApprovalStore } from "./store.ts";
import { type ApprovalVote, type Decision, needsOf, tallyApprovals, type VoteStanding } from "./tally.ts";

/** What {@link ApprovalService} is built from. */
export interface ApprovalServiceDeps {
  promotions: PromotionStore;
  votes: ApprovalStore;
  policies: Pick<PromotionPolicies, "approvals">;
  /** A promotion the caller may read; `not_found` otherwise (the promotion service's `get`). */
  read: (principal: Principal, id: string) => Promise<PromotionRecord>;
  clock: Clock;
  /** Wakes the worker, so the approvals gate is decided at once. */
  wake: () => void;
  /** Tells long-polls in this process that a promotion changed. */
  notify: (id: string) => void;
  /** Counts a finished promotion (the promotion metrics' `finished`). */
  finished: (app: string, environment: string, state: string) => void;
  logger: Logger;
}

/** A vote as the caller asked it. */
export interface VoteRequest {
  decision: Decision;
  comment?: string | undefined;
}

/** A promotion in an approver's inbox, with what it still needs. */
export interface PendingApproval {
  promotion: PromotionRecord;
  needs: { more: number; groups: string[] };
}

/** How often a reject re-reads and retries its compare-and-swap against the worker. */
const REJECT_ATTEMPTS = 20;
/** The most promotions the inbox looks at per environment. */
const INBOX_SCAN = 1000;

function refuse(reason: string, message: string): FerryError {
  return new FerryError("forbidden", message, { extra: { reason } });
}

/**
 * Approvals (docs/approvals.md): votes on promotions, the inbox, and the approvals shown on the
 * promotion resource. Eligibility and counting are the pure cores in eligibility.ts and tally.ts;
 * this is their I/O. An approve is stored and the worker woken (the gate counts it); a reject ends
 * the promotion `rejected` through the promotion store's compare-and-swap, re-read and retried
 * until it lands or the promotion is past rejecting, so a reject that races the worker is not lost.
 */
export class ApprovalService {
  readonly #deps: ApprovalServiceDeps;

  constructor(deps: ApprovalServiceDeps) {
    this.#deps = deps;
  }

  /**
   * `principal` approves or rejects promotion `id`: `not_found` when it may not read it, 403
   * `forbidden` with the refusal's `reason` when it may not vote, 400 for a reject without a
   * comment. Approving again while the approval counts changes nothing; an approval that stopped
   * counting (expired, policy changed) is given anew.
   */
  async vote(
    principal: Principal,
    id: string,
    request: VoteRequest,
  ): Promise<{ promotion: PromotionRecord; vote: VoteStanding }> {
    const comment = request.comment?.trim() || undefined;
    if (request.decision === "reject" && comment === undefined)
      throw new FerryError("validation_failed", "a reject needs a comment saying why", {
        extra: { reason: "comment_required" },
      });
    let promotion = await this.#deps.read(principal, id);
    const person = this.#person(principal, promotion);
    const rules = this.#deps.policies.approvals.get(promotion.environment)!;
    const now = this.#deps.clock.now();
    const votes = await this.#deps.votes.forPromotion(promotion.id);
    const mine = votes.find((v) => v.issuer === person.issuer.name && v.subject === person.subject);
    if (request.decision === "approve" && mine?.decision === "approve") {
      const standing = this.#standing(promotion, votes, now, mine.id);
      if (standing?.whyNot !== "expired" && standing?.whyNot !== "policy_changed")
        return { promotion, vote: standing! };
    }
    const vote: ApprovalVote = {
      id: newRecordId(),
      promotionId: promotion.id,
      app: promotion.app,
      digest: promotion.digest,
      environment: promotion.environment,
      issuer: person.issuer.name,
      subject: person.subject,
      ...(person.name === undefined ? {} : { name: person.name }),
      decision: request.decision,
      ...(comment === undefined ? {} : { comment }),
      groups: [...person.groups],
      links: linksOf(person, rules.issuerLinks.get(person.issuer.name)),
      policyHash: rules.policyHash,
      createdAt: now,
      decidedAt: now,
    };
    // The vote and the promotion change it causes (rejected, or due now so the worker decides the
    // gates at once) commit in one transaction: the audit log takes votes from the promotion's
    // changes, so a vote stored without one could go unrecorded.
    let stored = vote;
    const put = async (tx: Kysely<Database>) => {
      stored = await this.#deps.votes.put(vote, tx);
    };
    promotion =
      request.decision === "reject"
        ? await this.#reject(promotion, vote, put)
        : await this.#due(promotion, put);
    this.#deps.logger.info(
      {
        promotion: promotion.id,
        app: promotion.app,
        environment: promotion.environment,
        decision: stored.decision,
        approver: { issuer: stored.issuer, subject: stored.subject },
      },
      request.decision === "reject" ? "promotion rejected by an approver" : "promotion approved",
    );
    this.#deps.notify(promotion.id);
    this.#deps.wake();
    const after = await this.#deps.votes.forPromotion(promotion.id);
    return { promotion, vote: this.#standing(promotion, after, this.#deps.clock.now(), stored.id)! };
  }

  /** The refusals that do not depend on state: a person, in an environment with approvals, eligible. */
  #person(principal: Principal, promotion: PromotionRecord): HumanPrincipal {
    if (principal.kind !== "human")
      throw refuse("not_a_person", "approvals are given by people, with a token from a human issuer");
    const rules = this.#deps.policies.approvals.get(promotion.environment);
    if (rules === undefined)
      throw refuse("no_approvals_configured", `${promotion.environment} requires no approvals`);
    const eligibility = approverEligibility(rules, principal, promotion);
    if (!eligibility.eligible) throw refuse(eligibility.reason, eligibility.message);
    return principal;
  }

  /**
   * Makes a waiting promotion due now, so the woken worker decides its gates at once (a waiting
   * promotion is otherwise looked at only at its `nextCheckAt`). Compare-and-swap, re-read when the
   * worker changed it first; a promotion that moved past its gates needs nothing.
   */
  async #due(start: PromotionRecord, put: (tx: Kysely<Database>) => Promise<void>): Promise<PromotionRecord> {
    let current = start;
    for (let attempt = 0; attempt < REJECT_ATTEMPTS; attempt++) {
      const now = this.#deps.clock.now();
      const updated = await this.#deps.promotions.updateWith(current, { nextCheckAt: now }, now, put);
      if (updated !== undefined) return updated;
      const reread = await this.#deps.promotions.get(current.id);
      if (reread === undefined) throw new FerryError("not_found", `no promotion ${current.id}`);
      current = reread;
      // The worker moved it on (started, or finished it): the state refusals say why.
      const state = voteStateEligibility(current);
      if (!state.eligible) throw refuse(state.reason, state.message);
    }
    throw new FerryError("conflict", "the promotion kept changing; try the approval again");
  }

  /** Moves the promotion to `rejected`; re-reads and retries when the worker changed it first. */
  async #reject(
    start: PromotionRecord,
    vote: ApprovalVote,
    put: (tx: Kysely<Database>) => Promise<void>,
  ): Promise<PromotionRecord> {
    let current = start;
    const by = { issuer: vote.issuer, subject: vote.subject, ...(vote.name ? { name: vote.name } : {}) };
    for (let attempt = 0; attempt < REJECT_ATTEMPTS; attempt++) {
      const updated = await this.#deps.promotions.updateWith(
        current,
        {
          state: transition(current.state, "reject"),
          nextCheckAt: null,
          result: {
            reason: "rejected",
            message: `rejected by ${vote.name ?? vote.subject} (${vote.issuer}): ${vote.comment}`,
            by,
            comment: vote.comment!,
          },
        },
        this.#deps.clock.now(),
        put,
      );
      if (updated !== undefined) {
        this.#deps.finished(updated.app, updated.environment, updated.state);
        return updated;
      }
      const reread = await this.#deps.promotions.get(current.id);
      if (reread === undefined) throw new FerryError("not_found", `no promotion ${current.id}`);
      current = reread;
      // The worker moved it on (started, or finished it): the state refusals say why.
      const state = voteStateEligibility(current);
      if (!state.eligible) throw refuse(state.reason, state.message);
    }
    throw new FerryError("conflict", "the promotion kept changing; try the reject again");
  }

  #standing(
    promotion: PromotionRecord,
    votes: readonly ApprovalVote[],
    now: number,
    voteId: string,
  ): VoteStanding | undefined {
    return this.standings(promotion, votes, now).find((s) => s.vote.id === voteId);
  }

  /** Whether each vote counts now; with no rules left for the environment, none does. */
  standings(promotion: PromotionRecord, votes: readonly ApprovalVote[], now: number): VoteStanding[] {
    const rules = this.#deps.policies.approvals.get(promotion.environment);
    if (rules === undefined)
      return votes.map((vote) => ({ vote, counts: false, whyNot: "policy_changed" as const }));
    return tallyApprovals(rules, promotion, votes, now).standings;
  }

  /** The approvals shown on the promotion resource; undefined when there are none and none are required. */
  async view(promotion: PromotionRecord): Promise<VoteStanding[] | undefined> {
    const votes = await this.#deps.votes.forPromotion(promotion.id);
    if (votes.length === 0 && !this.#deps.policies.approvals.has(promotion.environment)) return undefined;
    return this.standings(promotion, votes, this.#deps.clock.now());
  }

  /**
   * The caller's inbox: promotions waiting on their approvals gate that the caller may approve
   * (eligible, see {@link approverEligibility}) and has no counting vote on (an approval that expired
   * or was given under an earlier policy asks for a new one), oldest first, with what each needs.
   */
  async pending(principal: Principal): Promise<PendingApproval[]> {
    if (principal.kind !== "human") return [];
    const now = this.#deps.clock.now();
    const waiting: PromotionRecord[] = [];
    for (const environment of this.#deps.policies.approvals.keys()) {
      let cursor: string | undefined;
      let seen = 0;
      do {
        const page = await this.#deps.promotions.list({
          environment,
          state: "waiting",
          limit: 200,
          ...(cursor === undefined ? {} : { cursor }),
        });
        for (const p of page.items)
          if (p.gates.find((g) => g.name === "approvals")?.status === "waiting") waiting.push(p);
        seen += page.items.length;
        cursor = page.next;
      } while (cursor !== undefined && seen < INBOX_SCAN);
    }
    const votes = await this.#deps.votes.forPromotions(waiting.map((p) => p.id));
    const out: PendingApproval[] = [];
    for (const promotion of waiting) {
      const rules = this.#deps.policies.approvals.get(promotion.environment)!;
      if (!approverEligibility(rules, principal, promotion).eligible) continue;
      const tally = tallyApprovals(rules, promotion, votes.get(promotion.id) ?? [], now);
      const mine = tally.standings.find(
        (s) => s.vote.issuer === principal.issuer.name && s.vote.subject === principal.subject,
      );
      if (mine !== undefined && (mine.counts || mine.whyNot === "same_person")) continue;
      if (tally.satisfied) continue;
      out.push({ promotion, needs: needsOf(rules, tally) });
    }
    return out.sort((a, b) => a.promotion.createdAt - b.promotion.createdAt);
  }
}
