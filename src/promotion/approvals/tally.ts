import { personKeys } from "./links.ts";
import type { CompiledApprovalRules, PersonLinks } from "./rules.ts";

/** What a person decided. */
export type Decision = "approve" | "reject";

/** One person's vote on one promotion, as stored (times in epoch ms). */
export interface ApprovalVote {
  id: string;
  promotionId: string;
  /** What was approved: the promotion's app, digest and environment when the vote was given. */
  app: string;
  digest: string;
  environment: string;
  issuer: string;
  subject: string;
  name?: string | undefined;
  decision: Decision;
  comment?: string | undefined;
  /** The person's groups and link claims when they voted. */
  groups: string[];
  links: PersonLinks;
  /** The environment's policy hash when they voted (see `environmentPolicyHash`). */
  policyHash: string;
  /** The first vote of this person on this promotion. */
  createdAt: number;
  /** When the current decision was given (renewed when an approval that stopped counting is given again). */
  decidedAt: number;
}

/** Why an approval does not count (shown as `whyNot`). */
export type WhyNot = "expired" | "policy_changed" | "other_digest" | "same_person" | "rejected";

/** A vote and whether it counts now. */
export interface VoteStanding {
  vote: ApprovalVote;
  counts: boolean;
  whyNot?: WhyNot;
}

/** What the votes add up to under the rules, at `now`. */
export interface Tally {
  standings: VoteStanding[];
  /** Distinct people whose approvals count. */
  counting: number;
  /** How many more people must approve. */
  more: number;
  /** The `requireEach` groups no counting approver is in yet. */
  missingGroups: string[];
  /** Approvals that stopped counting, by why. */
  stale: { expired: number; policy_changed: number };
  satisfied: boolean;
}

/** The promotion a tally is for: what votes are bound to. */
export interface TallyTarget {
  app: string;
  digest: string;
  environment: string;
}

/**
 * Counts the votes of one promotion under its environment's rules, at `now`. Pure. An approval
 * counts while it is bound to this app, digest and environment, was given under today's policy
 * hash and is younger than `expiresAfter`; a person counts once, however many identities they
 * voted with (issuer + subject, and any shared link claim, make one person: the earliest vote
 * counts). Rejects never count: the service ends the promotion on a reject.
 */
export function tallyApprovals(
  rules: CompiledApprovalRules,
  target: TallyTarget,
  votes: readonly ApprovalVote[],
  now: number,
): Tally {
  const stale = { expired: 0, policy_changed: 0 };
  const seen = new Set<string>();
  const counted: ApprovalVote[] = [];
  const byAge = [...votes].sort((a, b) => a.decidedAt - b.decidedAt || (a.id < b.id ? -1 : 1));
  const standing = new Map<string, VoteStanding>();
  for (const vote of byAge) {
    const why = whyNot(rules, target, vote, now);
    if (why === "expired" || why === "policy_changed") stale[why]++;
    if (why !== undefined) {
      standing.set(vote.id, { vote, counts: false, whyNot: why });
      continue;
    }
    const keys = [`sub:${vote.issuer}\u0000${vote.subject}`, ...personKeys(vote.links)];
    if (keys.some((k) => seen.has(k))) {
      standing.set(vote.id, { vote, counts: false, whyNot: "same_person" });
      continue;
    }
    for (const k of keys) seen.add(k);
    counted.push(vote);
    standing.set(vote.id, { vote, counts: true });
  }
  const more = Math.max(0, rules.count - counted.length);
  const missingGroups = rules.requireEach.filter((g) => !counted.some((v) => v.groups.includes(g)));
  return {
    standings: votes.map((v) => standing.get(v.id)!),
    counting: counted.length,
    more,
    missingGroups,
    stale,
    satisfied: more === 0 && missingGroups.length === 0,
  };
}

function whyNot(
  rules: CompiledApprovalRules,
  target: TallyTarget,
  vote: ApprovalVote,
  now: number,
): WhyNot | undefined {
  if (vote.decision === "reject") return "rejected";
  if (vote.app !== target.app || vote.digest !== target.digest || vote.environment !== target.environment)
    return "other_digest";
  if (vote.policyHash !== rules.policyHash) return "policy_changed";
  if (now - vote.decidedAt >= rules.expiresAfter) return "expired";
  return undefined;
}

/** What the gate and the inbox say is still needed, e.g. "1 more approval (from one of release, security), and one from security". */
export function describeNeeds(rules: CompiledApprovalRules, tally: Tally): string {
  const parts: string[] = [];
  if (tally.more > 0)
    parts.push(
      `${tally.more} more approval${tally.more === 1 ? "" : "s"} (from ${rules.groups.length === 1 ? rules.groups[0] : `one of ${rules.groups.join(", ")}`})`,
    );
  if (tally.missingGroups.length > 0) parts.push(`one from each of ${tally.missingGroups.join(", ")}`);
  const stale: string[] = [];
  if (tally.stale.expired > 0) stale.push(`${tally.stale.expired} expired`);
  if (tally.stale.policy_changed > 0)
    stale.push(`${tally.stale.policy_changed} given under an earlier policy of ${rules.environment}`);
  const needs = `needs ${parts.join(", and ")}`;
  return stale.length === 0 ? needs : `${needs}; approvals that no longer count: ${stale.join(", ")}`;
}

/**
 * What an approver's inbox shows a promotion needs: `more`, the people still needed (the count's
 * shortfall, or one per `requireEach` group nobody counting is in, whichever is larger), and
 * `groups`, where the next approver must come from (the missing `requireEach` groups, else any
 * approver group).
 */
export function needsOf(rules: CompiledApprovalRules, tally: Tally): { more: number; groups: string[] } {
  const missing = tally.missingGroups;
  return {
    more: Math.max(tally.more, missing.length),
    groups: missing.length > 0 ? [...missing] : [...new Set([...rules.groups, ...rules.requireEach])],
  };
}
