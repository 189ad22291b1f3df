import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";
import type { HumanPrincipal, PipelinePrincipal } from "../../src/identity/principal.ts";
import {
  compileBreakGlass,
  JUSTIFICATION_MAX,
  justificationOf,
  mayBreakGlass,
} from "../../src/promotion/approvals/break-glass.ts";
import { compileFreeze } from "../../src/promotion/freeze.ts";
import { type EnvironmentRules, evaluateGates, type GateFacts } from "../../src/promotion/gates.ts";
import type { VerificationReport } from "../../src/verify/report.ts";

const CONFIG = `
store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
issuers:
  - { name: github, url: "https://token.actions.githubusercontent.com", audience: ferry }
  - { name: sso, url: "https://sso.example.com", audience: ferry, kind: human, groupsClaim: groups }
environments:
  - name: staging
  - name: production
    after: staging
    approvals: { count: 1, groups: [release-managers] }
    breakGlass:
      groups: [incident]
      pipelines:
        - { issuer: github, claims: { workflow: hotfix, ref: refs/heads/main } }
  - name: dr
    after: staging
    approvals: { count: 1, groups: [sre] }
    breakGlass: { groups: [sre], reviewWithin: 2h }
apps:
  - name: web
    images: { staging: reg/staging/web, production: reg/prod/web, dr: reg/dr/web }
`;

const { config } = parseConfigText(CONFIG, "/etc/ferry/ferry.yaml", {});
const rules = compileBreakGlass(config.environments);

const github = {
  name: "github",
  url: "https://token.actions.githubusercontent.com",
  platform: "github" as const,
};
function pipeline(claims: Record<string, unknown>, via: "oidc" | "ferry" = "oidc"): PipelinePrincipal {
  return {
    kind: "pipeline",
    via,
    issuer: github,
    subject: "repo:acme/web",
    claims,
    tokenSha256: "0".repeat(64),
  };
}
function person(groups: string[]): HumanPrincipal {
  const issuer = { name: "sso", url: "https://sso.example.com", platform: "generic" as const };
  return { kind: "human", issuer, subject: "alice", claims: { groups }, groups, tokenSha256: "1".repeat(64) };
}
const decide = (principal: PipelinePrincipal | HumanPrincipal, env: string) =>
  mayBreakGlass(principal, env, rules.get(env));

describe("who may break glass", () => {
  const hotfix = pipeline({ workflow: "hotfix", ref: "refs/heads/main" });

  it("compiles each environment's rule once, with reviewWithin defaulting to 24h", () => {
    expect([...rules.keys()]).toEqual(["production", "dr"]);
    expect(rules.get("production")?.reviewWithin).toBe(24 * 3_600_000);
    expect(rules.get("dr")?.reviewWithin).toBe(2 * 3_600_000);
  });

  it("admits a person by group and a pipeline by identity rule", () => {
    expect(decide(person(["engineering", "incident"]), "production")).toEqual({
      allowed: true,
      as: "person",
      group: "incident",
    });
    expect(decide(hotfix, "production")).toEqual({ allowed: true, as: "pipeline", rule: 0 });
  });

  it("refuses everyone else, saying which rule", () => {
    expect(decide(person(["release-managers"]), "production")).toMatchObject({
      allowed: false,
      reason: "break_glass_not_allowed",
    });
    const release = decide(pipeline({ workflow: "release", ref: "refs/heads/main" }), "production");
    expect(release).toMatchObject({ allowed: false, reason: "break_glass_not_allowed" });
    // For the log: the claim that did not match.
    expect(JSON.stringify(release)).toContain("workflow");
    // A Ferry-minted token carries Ferry's claims, not the platform's the rule is written against.
    expect(decide(pipeline(hotfix.claims, "ferry"), "production")).toMatchObject({
      allowed: false,
      reason: "break_glass_not_allowed",
    });
    // dr admits people only.
    expect(decide(hotfix, "dr")).toMatchObject({ allowed: false, reason: "break_glass_not_allowed" });
    expect(decide(person(["incident"]), "staging")).toMatchObject({
      allowed: false,
      reason: "break_glass_not_configured",
    });
  });

  it("needs a justification of 1-1000 characters, trimmed", () => {
    expect(justificationOf("  INC-1: down  ")).toBe("INC-1: down");
    expect(justificationOf(" \n\t ")).toBeUndefined();
    expect(justificationOf("x".repeat(JUSTIFICATION_MAX))).toHaveLength(JUSTIFICATION_MAX);
    expect(justificationOf("x".repeat(JUSTIFICATION_MAX + 1))).toBeUndefined();
  });
});

describe("the gates of a break-glass promotion", () => {
  const NOW = Date.UTC(2026, 5, 1, 12);
  const DIGEST = `sha256:${"a".repeat(64)}`;
  const env: EnvironmentRules = {
    name: "production",
    after: "staging",
    soak: 3_600_000,
    freeze: compileFreeze([{ from: "2026-01-01T00:00:00Z", to: "2027-01-01T00:00:00Z" }]),
    approvals: false,
  };
  const report = (allowed: boolean): VerificationReport =>
    ({
      digest: DIGEST,
      environment: "production",
      allowed,
      checks: [
        {
          name: "signature",
          passed: allowed,
          reason: allowed ? "trusted_signature" : "no_signatures_found",
          message: "…",
        },
      ],
    }) as unknown as VerificationReport;
  const facts = (over: Partial<GateFacts> = {}): GateFacts => ({
    now: NOW,
    digest: DIGEST,
    rollback: false,
    source: { repository: "reg/staging/web", exists: true },
    // Never promoted upstream: order fails and soak cannot be counted, unless skipped.
    upstream: undefined,
    verification: report(true),
    breakGlass: false,
    ...over,
  });
  const statuses = (f: GateFacts) =>
    Object.fromEntries(evaluateGates(env, f).map((g) => [g.gate, `${g.status}:${g.reason}`]));

  it("skips order, soak and freeze, which an ordinary promotion fails or waits on", () => {
    expect(statuses(facts())).toMatchObject({
      order: "failed:not_promoted_upstream",
      soak: "failed:not_promoted_upstream",
      freeze: "waiting:frozen",
    });
    expect(statuses(facts({ breakGlass: true }))).toMatchObject({
      source: "passed:source_found",
      order: "skipped:break_glass",
      soak: "skipped:break_glass",
      freeze: "skipped:break_glass",
      verification: "passed:verified",
    });
  });

  it("combines with a rollback: a rollback during a freeze window", () => {
    expect(statuses(facts({ rollback: true }))).toMatchObject({ freeze: "waiting:frozen" });
    expect(statuses(facts({ rollback: true, breakGlass: true }))).toMatchObject({
      order: "skipped:rollback",
      soak: "skipped:rollback",
      freeze: "skipped:break_glass",
    });
  });

  it("never skips source or verification", () => {
    expect(statuses(facts({ breakGlass: true, verification: report(false) })).verification).toBe(
      "failed:no_signatures_found",
    );
    expect(statuses(facts({ breakGlass: true, source: { repository: "r", exists: false } })).source).toBe(
      "failed:source_missing",
    );
  });
});

describe("breakGlass in ferry.yaml", () => {
  function problems(yaml: string): Record<string, string> {
    try {
      parseConfigText(yaml, "/etc/ferry/ferry.yaml", {});
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    }
    throw new Error("expected the config to be refused");
  }
  const base = (env: string) =>
    `store: { sqlite: ./f.db }\nkeys: { signing: ./k.pem }\nissuers:\n  - { name: sso, url: "https://sso.example.com", audience: f, kind: human }\nenvironments:\n  - name: production\n${env}`;

  it("refuses break-glass without approvers to review it", () => {
    expect(problems(base("    breakGlass: { groups: [incident] }\n"))).toMatchObject({
      "environments[0].breakGlass": expect.stringContaining("configure `approvals` too"),
    });
  });

  it("refuses a rule with neither groups nor pipelines, a human issuer's rule and an unknown issuer", () => {
    const approvals = "    approvals: { count: 1, groups: [rm] }\n";
    expect(problems(base(`${approvals}    breakGlass: { reviewWithin: 1h }\n`))).toMatchObject({
      "environments[0].breakGlass": expect.stringContaining("needs `groups`, `pipelines` or both"),
    });
    const pipelines = `${approvals}    breakGlass:\n      pipelines: [{ issuer: sso }, { issuer: nope }]\n`;
    expect(problems(base(pipelines))).toMatchObject({
      "environments[0].breakGlass.pipelines[0].issuer": expect.stringContaining("human issuer"),
      "environments[0].breakGlass.pipelines[1].issuer": expect.stringContaining('unknown issuer "nope"'),
    });
    expect(
      problems(base(`${approvals}    breakGlass: { groups: [x], reviewWithin: soon }\n`)),
    ).toHaveProperty("environments[0].breakGlass.reviewWithin");
  });
});
