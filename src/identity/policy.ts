import { StartupError } from "../common/startup-error.ts";
import { describeClaim, readClaim } from "./claim-path.ts";
import { canonicalScalar, compileMatcher, type Matcher, type MatcherSpec } from "./matchers.ts";

/** One rule as written in the config: an issuer name and claim matchers (any `allow` or `pipelines` entry). */
export interface RuleSpec {
  issuer: string;
  claims: Record<string, MatcherSpec>;
}

/** A rule compiled once at config load. */
export interface CompiledRule {
  /** Position in the list (0-based), for explanations and config paths. */
  index: number;
  issuer: string;
  claims: readonly { path: string; matcher: Matcher }[];
}

/** What a policy is evaluated against: the issuer's config name and the token's claims. */
export interface PolicySubject {
  issuer: string;
  claims: Readonly<Record<string, unknown>>;
}

/** The outcome of one claim matcher against a claim set. */
export interface ClaimCheck {
  claim: string;
  expected: string;
  /** The claim's value, shortened for logs (`missing` when absent). */
  actual: string;
  matched: boolean;
}

/** The outcome of one rule. A rule matches when its issuer is the token's and every claim check passes. */
export interface RuleExplanation {
  rule: number;
  issuer: string;
  issuerMatched: boolean;
  checks: ClaimCheck[];
  matched: boolean;
}

/** A policy decision with the full explanation (every rule, every claim). */
export interface PolicyDecision {
  allowed: boolean;
  /** The first rule that matched, when allowed. */
  matchedRule: number | undefined;
  rules: RuleExplanation[];
}

/** A trust policy (a credential's `allow`, an app's `pipelines`): any one rule suffices. */
export interface CompiledPolicy {
  /** What the policy guards, e.g. `credential deploy-production`. */
  readonly name: string;
  readonly rules: readonly CompiledRule[];
  /** The first matching rule's index, or undefined: the fast path, with no explanation built. */
  match(subject: PolicySubject): number | undefined;
  /** The decision with every rule and claim explained (for refusals, logs and `ferry policy explain`). */
  evaluate(subject: PolicySubject): PolicyDecision;
}

/** A rule that could not be compiled (an invalid regex): a {@link StartupError} at its config path. */
export class PolicyCompileError extends StartupError {
  readonly path: string;

  constructor(path: string, message: string, options: { cause?: unknown } = {}) {
    super([{ path, message }], options);
    this.name = "PolicyCompileError";
    this.path = path;
  }
}

/**
 * Compiles a list of rules. `basePath` names the list in the config (`credentials[2].allow`) so a
 * bad regex is reported where it is written. The config schema already refuses invalid regexes;
 * this is the second line for rules built elsewhere.
 */
export function compilePolicy(name: string, rules: readonly RuleSpec[], basePath: string): CompiledPolicy {
  const compiled: CompiledRule[] = rules.map((rule, index) => ({
    index,
    issuer: rule.issuer,
    claims: Object.entries(rule.claims).map(([path, spec]) => {
      try {
        return { path, matcher: compileMatcher(spec) };
      } catch (cause) {
        throw new PolicyCompileError(
          `${basePath}[${index}].claims["${path}"]`,
          `invalid regex: ${(cause as Error).message}`,
          { cause },
        );
      }
    }),
  }));
  return {
    name,
    rules: compiled,
    match: (subject) =>
      compiled.find(
        (rule) =>
          rule.issuer === subject.issuer &&
          rule.claims.every(({ path, matcher }) => claimMatches(matcher, readClaim(subject.claims, path))),
      )?.index,
    evaluate: (subject) => evaluate(compiled, subject),
  };
}

/** Whether a claim value matches: a scalar by its canonical text, a list of scalars when any element does. */
export function claimMatches(matcher: Matcher, value: unknown): boolean {
  if (Array.isArray(value)) return value.some((v) => !Array.isArray(v) && claimMatches(matcher, v));
  const text = canonicalScalar(value);
  return text !== undefined && matcher.test(text);
}

function evaluate(rules: readonly CompiledRule[], subject: PolicySubject): PolicyDecision {
  const explained = rules.map((rule): RuleExplanation => {
    const issuerMatched = rule.issuer === subject.issuer;
    const checks = rule.claims.map(({ path, matcher }) => {
      const value = readClaim(subject.claims, path);
      return {
        claim: path,
        expected: matcher.description,
        actual: describeClaim(value),
        matched: claimMatches(matcher, value),
      };
    });
    return {
      rule: rule.index,
      issuer: rule.issuer,
      issuerMatched,
      checks,
      matched: issuerMatched && checks.every((c) => c.matched),
    };
  });
  const first = explained.find((r) => r.matched);
  return { allowed: first !== undefined, matchedRule: first?.rule, rules: explained };
}

/**
 * The explanation as lines for a person (the CLI) or a log: which rule matched, or per rule which
 * claims failed and what they held.
 */
export function formatDecision(decision: PolicyDecision): string[] {
  const lines: string[] = [];
  for (const rule of decision.rules) {
    if (!rule.issuerMatched) {
      lines.push(`rule ${rule.rule + 1} (issuer ${rule.issuer}): not this token's issuer`);
      continue;
    }
    lines.push(`rule ${rule.rule + 1} (issuer ${rule.issuer}): ${rule.matched ? "matched" : "no match"}`);
    if (rule.checks.length === 0) lines.push("  (no claim conditions: every token from this issuer matches)");
    for (const c of rule.checks) {
      lines.push(
        c.matched
          ? `  ok   ${c.claim} = ${c.actual} matches ${c.expected}`
          : `  FAIL ${c.claim} = ${c.actual} does not match ${c.expected}`,
      );
    }
  }
  lines.push(decision.allowed ? `allowed by rule ${decision.matchedRule! + 1}` : "denied: no rule matched");
  return lines;
}

/** A compact, structured form of the mismatches for a log line: per rule, the failed claims. */
export function mismatchSummary(decision: PolicyDecision): Record<string, unknown>[] {
  return decision.rules.map((r) =>
    r.issuerMatched
      ? {
          rule: r.rule + 1,
          failed: r.checks
            .filter((c) => !c.matched)
            .map((c) => ({ claim: c.claim, actual: c.actual, expected: c.expected })),
        }
      : { rule: r.rule + 1, failed: "issuer", expected: r.issuer },
  );
}
