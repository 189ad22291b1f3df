import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";
import type { HumanPrincipal, PipelinePrincipal } from "../../src/identity/principal.ts";
import { compileTrustPolicies } from "../../src/identity/trust-policies.ts";
import { compilePromotionPolicies } from "../../src/promotion/policies.ts";
import { mayPromote } from "../../src/promotion/promoters.ts";

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
    promoters:
      pipelines:
        - { issuer: github, claims: { repository_id: "74", ref: refs/heads/main } }
      groups: [on-call]
  - name: dr
    after: staging
    promoters: { groups: [sre] }
apps:
  - name: web
    images: { staging: reg/staging/web, production: reg/prod/web, dr: reg/dr/web }
    pipelines:
      - { issuer: github, claims: { repository_id: "74" } }
`;

const { config } = parseConfigText(CONFIG, "/etc/ferry/ferry.yaml", {});
const trust = compileTrustPolicies(config);
const policies = compilePromotionPolicies(config, trust.apps);

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
const decide = (principal: PipelinePrincipal | HumanPrincipal, env: string, app = "web") =>
  mayPromote(principal, policies.promoterPolicies(app, env));

describe("who may promote", () => {
  const main = pipeline({ repository_id: "74", ref: "refs/heads/main" });
  const branch = pipeline({ repository_id: "74", ref: "refs/heads/feature" });

  it("lets every pipeline of the app promote where the environment names no promoters", () => {
    expect(decide(branch, "staging")).toEqual({
      allowed: true,
      as: "pipeline",
      appRule: 0,
      promoterRule: undefined,
    });
  });

  it("narrows the app's pipelines by the environment's promoter rules", () => {
    expect(decide(main, "production")).toEqual({
      allowed: true,
      as: "pipeline",
      appRule: 0,
      promoterRule: 0,
    });
    const refused = decide(branch, "production");
    expect(refused).toMatchObject({ allowed: false, reason: "not_environment_promoter" });
    expect(!refused.allowed && refused.mismatches).toEqual([
      { rule: 1, failed: [{ claim: "ref", actual: '"refs/heads/feature"', expected: '"refs/heads/main"' }] },
    ]);
  });

  it("refuses a pipeline that matches the promoter rules but is not one of the app's", () => {
    const other = pipeline({ repository_id: "75", ref: "refs/heads/main" });
    expect(decide(other, "production")).toMatchObject({ allowed: false, reason: "not_app_pipeline" });
    expect(decide(other, "staging")).toMatchObject({ allowed: false, reason: "not_app_pipeline" });
    expect(decide(main, "production", "api")).toMatchObject({ allowed: false, reason: "not_app_pipeline" });
  });

  it("admits no pipeline where promoters list only groups", () => {
    expect(decide(main, "dr")).toMatchObject({ allowed: false, reason: "not_environment_promoter" });
  });

  it("refuses a Ferry-minted token even with matching claims", () => {
    const minted = pipeline({ repository_id: "74", ref: "refs/heads/main" }, "ferry");
    expect(decide(minted, "staging")).toMatchObject({ allowed: false, reason: "ferry_minted_token" });
  });

  it("lets people in a promoter group promote, and no one else", () => {
    expect(decide(person(["dev", "on-call"]), "production")).toEqual({
      allowed: true,
      as: "person",
      group: "on-call",
    });
    expect(decide(person(["sre"]), "dr")).toEqual({ allowed: true, as: "person", group: "sre" });
    expect(decide(person(["sre"]), "production")).toMatchObject({
      allowed: false,
      reason: "not_in_promoter_group",
    });
    expect(decide(person(["on-call"]), "staging")).toMatchObject({
      allowed: false,
      reason: "not_in_promoter_group",
    });
    expect(decide(person([]), "production")).toMatchObject({
      allowed: false,
      reason: "not_in_promoter_group",
    });
  });

  it("compiles the rules once, with the trust-policy compiler and their config path", () => {
    const compiled = policies.promoters.get("production")!.pipelines!;
    expect(compiled.name).toBe("promoters of production");
    expect(compiled.rules).toHaveLength(1);
    expect(policies.promoters.has("staging")).toBe(false);
    expect(policies.promoterPolicies("web", "production").appPipelines).toBe(trust.apps.get("web"));
  });
});

describe("promotion config", () => {
  function problems(text: string): Record<string, string> {
    try {
      parseConfigText(text, "/etc/ferry/ferry.yaml", {});
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    }
    throw new Error("expected the config to be refused");
  }
  const base = (envs: string) =>
    `store: { sqlite: ./f.db }\nkeys: { signing: ./k.pem }\nissuers:\n  - { name: sso, url: "https://sso.example.com", audience: f, kind: human }\nenvironments:\n${envs}`;

  it("defaults maxWait to 24h and reads a given one", () => {
    expect(config.promotion.maxWait).toBe(86_400_000);
    expect(policies.maxWait).toBe(86_400_000);
    const { config: c } = parseConfigText(
      `${base("  - { name: staging }\n")}promotion: { maxWait: 2h }\n`,
      "/x/f.yaml",
      {},
    );
    expect(c.promotion.maxWait).toBe(7_200_000);
  });

  it("reads recurring and absolute freeze windows into the calendar", () => {
    const { config: c } = parseConfigText(
      base(
        '  - name: production\n    freeze:\n      - { cron: "0 16 * * 5", duration: 64h, timeZone: Europe/Berlin }\n      - { from: "2026-12-24T00:00:00+01:00", to: "2026-12-27T00:00:00+01:00" }\n',
      ),
      "/x/f.yaml",
      {},
    );
    expect(c.environments[0]!.freeze![0]).toEqual({
      cron: "0 16 * * 5",
      duration: 64 * 3_600_000,
      timeZone: "Europe/Berlin",
    });
    const rules = compilePromotionPolicies(c, new Map()).environments.get("production")!;
    expect(rules.freeze.at(Date.parse("2026-03-28T12:00:00Z"))).toMatchObject({
      frozen: true,
      until: Date.parse("2026-03-30T06:00:00Z"),
    });
    expect(rules.freeze.at(Date.parse("2026-12-25T12:00:00Z"))).toMatchObject({ frozen: true });
  });

  it("reports a bad cron, a cron that never fires, an unknown zone and a backwards window at their paths", () => {
    const found = problems(
      base(
        [
          "  - name: production",
          "    freeze:",
          '      - { cron: "61 16 * * 5", duration: 64h, timeZone: Europe/Berlin }',
          '      - { cron: "0 0 30 2 *", duration: 1h, timeZone: UTC }',
          '      - { cron: "0 16 * * 5", duration: 1h, timeZone: Europe/Atlantis }',
          '      - { cron: "0 16 * * 5 2027", duration: 0h, timeZone: UTC }',
          '      - { from: "2026-12-27T00:00:00Z", to: "2026-12-24T00:00:00Z" }',
          "",
        ].join("\n"),
      ),
    );
    expect(found).toEqual({
      "environments[0].freeze[0].cron": "invalid cron expression: Invalid value for minute: 61",
      "environments[0].freeze[1].cron": "this cron expression never fires",
      "environments[0].freeze[2].timeZone": 'expected an IANA time zone such as "Europe/Berlin" or "UTC"',
      "environments[0].freeze[3].cron": expect.stringMatching(/^invalid cron expression: .*5 parts/),
      "environments[0].freeze[3].duration": 'expected a positive duration such as "15m" or "1h", got "0h"',
      "environments[0].freeze[4].to": "`to` must be after `from`",
    });
  });

  it("refuses empty promoters, unknown issuers and human issuers in promoter rules", () => {
    const found = problems(
      base(
        [
          "  - { name: a, promoters: {} }",
          "  - { name: b, promoters: { pipelines: [{ issuer: nope }] } }",
          "  - { name: c, promoters: { pipelines: [{ issuer: sso }], groups: [] } }",
          "",
        ].join("\n"),
      ),
    );
    expect(found).toEqual({
      "environments[0].promoters": "promoters needs `pipelines`, `groups` or both",
      "environments[1].promoters.pipelines[0].issuer": 'unknown issuer "nope" (known: sso)',
      "environments[2].promoters.groups": "expected at least 1 item(s)",
      "environments[2].promoters.pipelines[0].issuer":
        'issuer "sso" is a human issuer; admit people with promoters.groups',
    });
  });
});
