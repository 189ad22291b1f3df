import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.ts";
import type { HumanPrincipal, PipelinePrincipal } from "../../src/identity/principal.ts";
import { compileTrustPolicies } from "../../src/identity/trust-policies.ts";
import { compileReadAccess, mayRead, type ReadScope } from "../../src/promotion/read-access.ts";

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
    promoters: { groups: [on-call] }
  - name: gated
    approvals: { count: 1, groups: [release] }
apps:
  - name: web
    images: { staging: reg/staging/web, production: reg/prod/web, gated: reg/gated/web }
    pipelines:
      - { issuer: github, claims: { repository_id: "74" } }
  - name: api
    images: { staging: reg/staging/api }
    pipelines:
      - { issuer: github, claims: { repository_id: "99" } }
verification: { readers: [auditors] }
`;

const { config } = parseConfigText(CONFIG, "/etc/ferry/ferry.yaml", {});
const access = compileReadAccess(config, compileTrustPolicies(config).apps);

const github = {
  name: "github",
  url: "https://token.actions.githubusercontent.com",
  platform: "github" as const,
};
function pipeline(claims: Record<string, unknown>): PipelinePrincipal {
  return {
    kind: "pipeline",
    via: "oidc",
    issuer: github,
    subject: "repo:acme/x",
    claims,
    tokenSha256: "0".repeat(64),
  };
}
function minted(environment: string | undefined): PipelinePrincipal {
  const issuer = { name: "ferry", url: "https://ferry.test", platform: "generic" as const };
  return {
    kind: "pipeline",
    via: "ferry",
    issuer,
    subject: "repo:acme/web",
    claims: { repository_id: "74" },
    environment,
    tokenSha256: "0".repeat(64),
  };
}
function person(groups: string[]): HumanPrincipal {
  const issuer = { name: "sso", url: "https://sso.example.com", platform: "generic" as const };
  return { kind: "human", issuer, subject: "alice", claims: { groups }, groups, tokenSha256: "1".repeat(64) };
}
/** The scope as plain data: app → its readable environments, sorted. */
const shown = (scope: ReadScope) =>
  Object.fromEntries([...scope.apps].map(([app, envs]) => [app, [...envs].sort()]));

describe("who may read promotions", () => {
  it("shows a pipeline all of the apps whose pipelines it matches, and nothing else", () => {
    expect(shown(access.scope(pipeline({ repository_id: "74" })))).toEqual({
      web: ["gated", "production", "staging"],
    });
    expect(shown(access.scope(pipeline({ repository_id: "99" })))).toEqual({ api: ["staging"] });
  });

  it("shows another repository's pipeline nothing", () => {
    expect(shown(access.scope(pipeline({ repository_id: "500" })))).toEqual({});
  });

  it("shows a Ferry-minted credential only its environment, never by the claims it carries", () => {
    const scope = access.scope(minted("staging"));
    expect(shown(scope)).toEqual({ web: ["staging"], api: ["staging"] });
    expect(mayRead(scope, "web", "production")).toBe(false);
    expect(shown(access.scope(minted("production")))).toEqual({ web: ["production"] });
    expect(shown(access.scope(minted(undefined)))).toEqual({});
  });

  it("shows readers everything, promoters and approvers all of their app, and others nothing", () => {
    expect(shown(access.scope(person(["auditors"])))).toEqual({
      web: ["gated", "production", "staging"],
      api: ["staging"],
    });
    expect(shown(access.scope(person(["on-call"])))).toEqual({ web: ["gated", "production", "staging"] });
    expect(shown(access.scope(person(["release"])))).toEqual({ web: ["gated", "production", "staging"] });
    expect(shown(access.scope(person(["developers"])))).toEqual({});
    expect(shown(access.scope(person([])))).toEqual({});
  });

  it("never lets a person in by matching an app's pipeline rules", () => {
    const impostor = { ...person([]), claims: { repository_id: "74" } };
    expect(shown(access.scope(impostor))).toEqual({});
  });
});
