import type { Platform } from "./claims.ts";
import { compileMatcher, type MatcherSpec } from "./matchers.ts";
import type { RuleSpec } from "./policy.ts";

/** A risky trust policy, found at config load: where it is written and why it is risky. */
export interface PolicyWarning {
  path: string;
  message: string;
}

/** What the linter needs to know about the rule's context. */
export interface LintContext {
  /** Platform of each issuer, by config name. */
  platforms: ReadonlyMap<string, Platform>;
  /** True when the rule grants a credential for a production-like environment. */
  production: boolean;
}

/**
 * GitHub events whose runs execute code or inputs a pull request's author controls while holding
 * the base repository's privileges.
 */
export const RISKY_GITHUB_EVENTS = ["pull_request_target", "workflow_run", "issue_comment"] as const;

/**
 * The claims that pin a repository by its immutable ID, per platform: a name can be re-registered by
 * someone else after a rename or deletion, an ID cannot.
 */
const STABLE_IDS: Partial<Record<Platform, readonly string[]>> = {
  github: ["repository_id", "repository_owner_id", "enterprise_id"],
  gitlab: ["project_id", "namespace_id"],
};

/** GitHub's immutable subject form: `repo:owner@65/repo@74:…`. */
const IMMUTABLE_GITHUB_SUB = /^repo:[^/:@]+@\d+\/[^/:@]+@\d+(:|$)/;

function exactValues(spec: MatcherSpec): string[] | undefined {
  if (Array.isArray(spec)) return spec.map(String);
  if (typeof spec !== "object") return [String(spec)];
  return undefined;
}

/** True when a `sub` matcher lets anything at all stand in front of the subject. */
export function startsWithWildcard(spec: MatcherSpec): boolean {
  if (Array.isArray(spec) || typeof spec !== "object") return false;
  if ("glob" in spec) return /^[*?]/.test(spec.glob);
  const source = spec.regex.replace(/^\^/, "").replace(/^(\(\?:|\()+/, "");
  return /^(\.|\[|\\[wWsSdD])/.test(source);
}

function pinsStableId(rule: RuleSpec, platform: Platform): boolean {
  const ids = STABLE_IDS[platform] ?? [];
  for (const [path, spec] of Object.entries(rule.claims)) {
    if (ids.includes(path) && exactValues(spec) !== undefined) return true;
    if (platform === "github" && path === "sub") {
      const values = exactValues(spec);
      if (values?.every((v) => IMMUTABLE_GITHUB_SUB.test(v))) return true;
    }
  }
  return false;
}

/**
 * Lints one rule. Warnings, not errors: each names a policy that is legal but easy to get wrong.
 * - a rule with no claim conditions accepts every token of its issuer;
 * - GitHub/GitLab rules that pin no immutable `*_id` claim;
 * - a `sub` matcher that starts with a wildcard;
 * - GitHub rules for a production credential that allow `pull_request_target`, `workflow_run` or
 *   `issue_comment` runs (no `event_name` condition counts as allowing them);
 * - GitHub/GitLab rules that say nothing about `runner_environment`, so self-hosted runners pass.
 */
export function lintRule(rule: RuleSpec, path: string, context: LintContext): PolicyWarning[] {
  const out: PolicyWarning[] = [];
  const warn = (message: string) => out.push({ path, message });
  const platform = context.platforms.get(rule.issuer) ?? "generic";
  const claims = rule.claims;
  if (Object.keys(claims).length === 0) {
    warn(`has no claim conditions: every token from issuer "${rule.issuer}" matches it`);
  }
  if ((platform === "github" || platform === "gitlab") && !pinsStableId(rule, platform)) {
    const ids = (STABLE_IDS[platform] ?? []).slice(0, 2).join(" or ");
    warn(
      `pins no immutable *_id claim (${ids}): a ${platform} name can be re-registered by someone else after a rename or deletion`,
    );
  }
  const sub = claims.sub;
  if (sub !== undefined && startsWithWildcard(sub)) {
    warn("starts `sub` with a wildcard: any owner or project can be put in front of it");
  }
  if (platform === "github" && context.production) {
    const event = claims.event_name;
    const matcher = event === undefined ? undefined : compileMatcher(event);
    const allowed = RISKY_GITHUB_EVENTS.filter((e) => matcher === undefined || matcher.test(e));
    if (allowed.length > 0) {
      warn(
        `allows ${allowed.join(", ")} runs to a production credential${event === undefined ? " (no event_name condition)" : ""}: those runs act on input from pull requests and comments`,
      );
    }
  }
  if ((platform === "github" || platform === "gitlab") && claims.runner_environment === undefined) {
    warn(
      "says nothing about runner_environment, so self-hosted runners are allowed; add runner_environment: github-hosted (or gitlab-hosted), or self-hosted if meant",
    );
  }
  return out;
}
