import type { CheckReason, VerificationReport } from "../verify/report.ts";
import type { CompiledApprovalRules } from "./approvals/rules.ts";
import { type ApprovalVote, describeNeeds, needsOf, tallyApprovals } from "./approvals/tally.ts";
import type { FreezeCalendar } from "./freeze.ts";

/** The gates, in the order they are evaluated and reported. */
export const GATE_NAMES = ["source", "order", "soak", "freeze", "verification", "approvals"] as const;
export type GateName = (typeof GATE_NAMES)[number];

/** What a gate decided. `waiting` is not a failure: the promotion is evaluated again later. */
export type GateStatus = "passed" | "waiting" | "failed" | "skipped";

/** Why a gate decided as it did. Stable: add codes, never rename them. */
export const GATE_REASONS = [
  // passed
  "source_found",
  "promoted_upstream",
  "soaked",
  "not_frozen",
  "verified",
  "approved",
  // skipped
  "no_upstream",
  "no_soak",
  "rollback",
  "not_configured",
  "break_glass",
  // waiting
  "soaking",
  "frozen",
  "awaiting_approvals",
  // failed
  "source_missing",
  "not_promoted_upstream",
  "recalled_upstream",
  "verification_missing",
  "verification_mismatch",
  "no_checks",
  /** No longer produced (approvals are collected now); kept because codes are never removed. */
  "approvals_unavailable",
] as const;
/** A gate's reason; the verification gate reports the first failing check's own reason. */
export type GateReason = (typeof GATE_REASONS)[number] | CheckReason;

/** One gate's decision. */
export interface GateResult {
  gate: GateName;
  status: GateStatus;
  reason: GateReason;
  message: string;
  /** When a waiting gate will pass, when known (epoch ms). */
  until?: number;
  /** The verification gate: the name of the first failing check. */
  check?: string;
  /** The approvals gate while it waits on votes: how many more people, and from which groups. */
  needs?: ApprovalNeeds;
}

/**
 * What a waiting approvals gate still needs: `more` people, the next of them from one of `groups`
 * (the `requireEach` groups nobody counting is in yet, else any approver group). Structured so an
 * approver's tooling (the `awaiting_approval` notification, the promotion resource) need not parse
 * the message.
 */
export interface ApprovalNeeds {
  more: number;
  groups: string[];
}

/** What the gates know of the target environment, compiled once from `environments[]`. */
export interface EnvironmentRules {
  name: string;
  after?: string | undefined;
  /** Milliseconds a digest must have spent in `after`. */
  soak?: number | undefined;
  freeze: FreezeCalendar;
  /** Whether the environment configures `approvals`. */
  approvals: boolean;
}

/** The digest's latest entry into the `after` environment, as stored. */
export interface UpstreamEntry {
  /** When it was promoted into `after` (epoch ms). */
  enteredAt: number;
  /** When it was recalled from `after`, if it was. */
  recalledAt?: number | undefined;
}

/** The stored facts the gates decide over; the caller looked each one up. */
export interface GateFacts {
  /** The clock (epoch ms). */
  now: number;
  digest: string;
  rollback: boolean;
  /** The repository the digest is copied from (see `sourceRepository`) and whether the digest is there. */
  source: { repository: string; exists: boolean };
  /** The digest's entry into `after`; undefined when it never got there. */
  upstream?: UpstreamEntry | undefined;
  /** The verification the caller ran for this digest and environment; undefined when none ran. */
  verification?: VerificationReport | undefined;
  /** The environment's compiled approval rules and the promotion's votes; undefined when it has no `approvals`. */
  approvals?: { rules: CompiledApprovalRules; app: string; votes: readonly ApprovalVote[] } | undefined;
  /** A break-glass promotion: order, soak, freeze and approvals are skipped (source and verification never). */
  breakGlass: boolean;
}

const result = (
  gate: GateName,
  status: GateStatus,
  reason: GateReason,
  message: string,
  extra: Partial<GateResult> = {},
): GateResult => ({ gate, status, reason, message, ...extra });

const breakGlassSkip = (gate: GateName) =>
  result(gate, "skipped", "break_glass", "skipped: a break-glass promotion (reviewed afterwards)");

/** `source`: the digest exists in the repository it is copied from. */
export function sourceGate(facts: GateFacts): GateResult {
  return facts.source.exists
    ? result("source", "passed", "source_found", `${facts.digest} is in ${facts.source.repository}`)
    : result("source", "failed", "source_missing", `${facts.digest} is not in ${facts.source.repository}`);
}

/** `order`: the digest was promoted into `after` and not recalled since. */
export function orderGate(env: EnvironmentRules, facts: GateFacts): GateResult {
  if (env.after === undefined)
    return result("order", "skipped", "no_upstream", `${env.name} comes first: no environment before it`);
  if (facts.rollback)
    return result("order", "skipped", "rollback", `a rollback to a digest ${env.name} ran before`);
  if (facts.breakGlass) return breakGlassSkip("order");
  if (facts.upstream === undefined)
    return result(
      "order",
      "failed",
      "not_promoted_upstream",
      `${facts.digest} was never promoted into ${env.after}`,
    );
  if (facts.upstream.recalledAt !== undefined)
    return result("order", "failed", "recalled_upstream", `${facts.digest} was recalled from ${env.after}`);
  return result("order", "passed", "promoted_upstream", `${facts.digest} is in ${env.after}`);
}

/** `soak`: the digest has been in `after` for at least `soak`; until then the promotion waits. */
export function soakGate(env: EnvironmentRules, facts: GateFacts): GateResult {
  if (env.after === undefined || env.soak === undefined)
    return result("soak", "skipped", "no_soak", `${env.name} has no soak time`);
  if (facts.rollback)
    return result("soak", "skipped", "rollback", `a rollback to a digest ${env.name} ran before`);
  if (facts.breakGlass) return breakGlassSkip("soak");
  if (facts.upstream === undefined)
    return result(
      "soak",
      "failed",
      "not_promoted_upstream",
      `${facts.digest} was never promoted into ${env.after}`,
    );
  const until = facts.upstream.enteredAt + env.soak;
  return facts.now >= until
    ? result("soak", "passed", "soaked", `${facts.digest} has soaked in ${env.after}`)
    : result("soak", "waiting", "soaking", `${facts.digest} soaks in ${env.after} until ${iso(until)}`, {
        until,
      });
}

/** `freeze`: no freeze window of the environment holds `now`; inside one, wait for the merged run to end. */
export function freezeGate(env: EnvironmentRules, facts: GateFacts): GateResult {
  if (facts.breakGlass) return breakGlassSkip("freeze");
  const state = env.freeze.at(facts.now);
  if (!state.frozen) return result("freeze", "passed", "not_frozen", `${env.name} is not frozen`);
  const end = state.until === undefined ? "no end in sight" : `until ${iso(state.until)}`;
  return result(
    "freeze",
    "waiting",
    "frozen",
    `${env.name} is frozen (freeze window ${state.window.rule}), ${end}`,
    state.until === undefined ? {} : { until: state.until },
  );
}

/** `verification`: the caller's report for this digest and environment allows it; otherwise its first failing check. */
export function verificationGate(env: EnvironmentRules, facts: GateFacts): GateResult {
  const report = facts.verification;
  if (report === undefined)
    return result("verification", "failed", "verification_missing", "no verification was run");
  if (report.digest !== facts.digest || report.environment !== env.name)
    return result(
      "verification",
      "failed",
      "verification_mismatch",
      `the verification is of ${report.digest} for ${report.environment}, not of ${facts.digest} for ${env.name}`,
    );
  const failing = report.checks.find((c) => !c.passed);
  if (failing !== undefined)
    return result("verification", "failed", failing.reason, `${failing.name}: ${failing.message}`, {
      check: failing.name,
    });
  if (!report.allowed || report.checks.length === 0)
    return result("verification", "failed", "no_checks", "the verification ran no check");
  return result("verification", "passed", "verified", `${facts.digest} verified for ${env.name}`);
}

/**
 * `approvals`: enough distinct eligible people approved, each approval still counting (bound to
 * today's policy hash, younger than `expiresAfter`); until then it waits, saying how many more and
 * from which groups. A reject is not a gate result: the approvals service ends the promotion.
 * Fails closed: an environment with `approvals` but no votes handed in waits.
 */
export function approvalsGate(env: EnvironmentRules, facts: GateFacts): GateResult {
  if (!env.approvals)
    return result("approvals", "skipped", "not_configured", `${env.name} requires no approvals`);
  if (facts.breakGlass) return breakGlassSkip("approvals");
  const given = facts.approvals;
  if (given === undefined)
    return result("approvals", "waiting", "awaiting_approvals", `${env.name} requires approvals`);
  const tally = tallyApprovals(
    given.rules,
    { app: given.app, digest: facts.digest, environment: env.name },
    given.votes,
    facts.now,
  );
  return tally.satisfied
    ? result(
        "approvals",
        "passed",
        "approved",
        `approved by ${tally.counting} ${tally.counting === 1 ? "person" : "people"}`,
      )
    : result(
        "approvals",
        "waiting",
        "awaiting_approvals",
        `${env.name} ${describeNeeds(given.rules, tally)}`,
        { needs: needsOf(given.rules, tally) },
      );
}

/** Every gate, in {@link GATE_NAMES} order. Pure: the same rules and facts give the same results. */
export function evaluateGates(env: EnvironmentRules, facts: GateFacts): GateResult[] {
  return [
    sourceGate(facts),
    orderGate(env, facts),
    soakGate(env, facts),
    freezeGate(env, facts),
    verificationGate(env, facts),
    approvalsGate(env, facts),
  ];
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
