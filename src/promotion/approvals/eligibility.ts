import type { Principal } from "../../identity/principal.ts";
import type { PromotionRecord } from "../record.ts";
import { isFinal } from "../states.ts";
import { linksOf, samePerson } from "./links.ts";
import { type CompiledApprovalRules, isLinkPlatform } from "./rules.ts";

/** Whether a principal may vote, and if not, the rule that says no (never another person's identity). */
export type Eligibility = { eligible: true } | { eligible: false; reason: string; message: string };

/** Why an approver is refused: stable codes, the `extra.reason` of the 403 (docs/approvals.md). */
export const REFUSAL_REASONS = [
  "not_a_person",
  "no_approvals_configured",
  "promotion_finished",
  "not_awaiting_approval",
  "not_in_group",
  "requester_cannot_approve",
  "pipeline_actor_cannot_approve",
  "same_person",
  "sod_unverifiable",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** What the check is for: a `vote` (approve or reject) needs a promotion still before its steps; a `review` does not. */
export interface EligibilityOptions {
  purpose?: "vote" | "review";
}

const no = (reason: RefusalReason, message: string): Eligibility => ({ eligible: false, reason, message });
const YES: Eligibility = { eligible: true };

/**
 * May `principal` approve (or reject, or review) `promotion`? Group, separation of duties, state.
 * Pure. For a vote (the default) the promotion must be `pending` or `waiting` with its approvals
 * gate not skipped; for `{purpose: "review"}` (break-glass reviews, after the fact) the state is not
 * checked, only the person: a person from a human issuer, in the groups, and not the requester,
 * the pipeline's actor or the same person under another identity.
 */
export function approverEligibility(
  rules: CompiledApprovalRules,
  principal: Principal,
  promotion: PromotionRecord,
  options: EligibilityOptions = {},
): Eligibility {
  if (principal.kind !== "human")
    return no("not_a_person", "approvals are given by people, with a token from a human issuer");
  if ((options.purpose ?? "vote") === "vote") {
    const state = voteStateEligibility(promotion);
    if (!state.eligible) return state;
  }
  const eligibleGroups = new Set([...rules.groups, ...rules.requireEach]);
  if (!principal.groups.some((g) => eligibleGroups.has(g)))
    return no(
      "not_in_group",
      `approvers of ${rules.environment} belong to one of: ${[...eligibleGroups].join(", ")}`,
    );
  return separationOfDuties(rules, principal, promotion);
}

/**
 * Whether the promotion still takes votes: not finished (`promotion_finished`), not running and its
 * approvals gate not skipped (`not_awaiting_approval`). Votes are taken from the request on, while
 * other gates (soak, freeze) still wait too: early approvals count once those pass, if still valid.
 */
export function voteStateEligibility(promotion: PromotionRecord): Eligibility {
  if (isFinal(promotion.state))
    return no("promotion_finished", `the promotion is ${promotion.state}: it takes no more votes`);
  const gate = promotion.gates.find((g) => g.name === "approvals");
  if (promotion.state === "running")
    return no("not_awaiting_approval", "the promotion passed its gates and runs: it takes no more votes");
  if (gate?.status === "skipped")
    return no("not_awaiting_approval", `the promotion's approvals gate is skipped (${gate.reason})`);
  return YES;
}

/** The separation-of-duties half of {@link approverEligibility}: never the requester, under any identity. */
function separationOfDuties(
  rules: CompiledApprovalRules,
  principal: Principal & { kind: "human" },
  promotion: PromotionRecord,
): Eligibility {
  const requester = promotion.requestedBy;
  if (requester.issuer === principal.issuer.name && requester.subject === principal.subject)
    return no("requester_cannot_approve", "the requester of a promotion cannot approve it");
  const mine = linksOf(principal, rules.issuerLinks.get(principal.issuer.name));
  const unverifiable = (why: string) =>
    rules.requireLinkedIdentity
      ? no(
          "sod_unverifiable",
          `separation of duties cannot be checked: ${why} (separationOfDuties.requireLinkedIdentity)`,
        )
      : YES;
  if (requester.kind === "pipeline") {
    if (!isLinkPlatform(requester.platform)) return YES; // no human actor is recorded for this platform
    if (requester.actor === undefined && requester.actorId === undefined)
      return unverifiable(`the pipeline's ${requester.platform} actor was not recorded`);
    const values = mine[requester.platform];
    if (values === undefined || values.length === 0)
      return unverifiable(`your token carries no ${requester.platform} link claim`);
    if (samePerson(values, { id: requester.actorId, login: requester.actor }))
      return no(
        "pipeline_actor_cannot_approve",
        "the person whose pipeline run asked for this promotion cannot approve it",
      );
    return YES;
  }
  // A person asked: the same issuer's subject decided above; across issuers, compare their links.
  if (requester.issuer === principal.issuer.name) return YES;
  const theirs = requester.links ?? {};
  let compared = false;
  for (const platform of Object.keys(theirs) as (keyof typeof theirs)[]) {
    const values = mine[platform];
    if (values === undefined || values.length === 0) continue;
    compared = true;
    if ((theirs[platform] ?? []).some((login) => samePerson(values, { login })))
      return no("same_person", "the requester of a promotion cannot approve it under another identity");
  }
  return compared ? YES : unverifiable("no link claim to compare with the requester's");
}
