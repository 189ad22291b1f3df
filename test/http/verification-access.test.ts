import { describe, expect, it } from "vitest";
import { VerificationAccess } from "../../src/http/verification-access.ts";
import { compilePolicy, type RuleSpec } from "../../src/identity/policy.ts";
import type { HumanPrincipal, PipelinePrincipal } from "../../src/identity/principal.ts";

const WEB = "registry.example.com/staging/web";
const WEB_PROD = "registry.example.com/prod/web";
const API = "registry.example.com/staging/api";
const SHARED = "registry.example.com/shared/base";

const apps: { name: string; images: Record<string, string>; pipelines: RuleSpec[] }[] = [
  {
    name: "web",
    images: { staging: WEB, production: WEB_PROD },
    pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
  },
  {
    name: "api",
    images: { staging: API },
    pipelines: [{ issuer: "github", claims: { repository_id: "99" } }],
  },
  // Two apps may list one repository: the pipelines of either may verify it.
  {
    name: "base-a",
    images: { staging: SHARED },
    pipelines: [{ issuer: "gitlab", claims: { project_id: "1" } }],
  },
  {
    name: "base-b",
    images: { staging: SHARED },
    pipelines: [{ issuer: "gitlab", claims: { project_id: "2" } }],
  },
];
const appPolicies = new Map(
  apps.map((a, i) => [a.name, compilePolicy(`app ${a.name}`, a.pipelines, `apps[${i}].pipelines`)]),
);
const access = new VerificationAccess({ apps, appPolicies, readers: ["release-managers"] });

const issuer = {
  name: "github",
  url: "https://token.actions.githubusercontent.com",
  platform: "github",
} as const;

function pipeline(claims: Record<string, unknown>, over: Partial<PipelinePrincipal> = {}): PipelinePrincipal {
  return { kind: "pipeline", via: "oidc", issuer, subject: "repo:acme/x", claims, tokenSha256: "0", ...over };
}

function person(groups: string[]): HumanPrincipal {
  return {
    kind: "human",
    issuer: { name: "sso", url: "https://sso.example.com", platform: "generic" },
    subject: "ada",
    claims: {},
    tokenSha256: "0",
    groups,
  };
}

const minted = (environment: string | undefined) =>
  pipeline(
    {},
    {
      via: "ferry",
      issuer: { name: "ferry", url: "https://ferry.example.com", platform: "generic" },
      environment,
      credential: "deploy",
    },
  );

describe("VerificationAccess", () => {
  it("lets an app's own pipeline verify any of the app's repositories, for any environment", () => {
    const web = pipeline({ repository_id: "74" });
    expect(access.decide(web, WEB, "staging")).toEqual({ allowed: true });
    expect(access.decide(web, WEB_PROD, "production")).toEqual({ allowed: true });
  });

  it("refuses another app's pipeline, and says which app owns the repository", () => {
    const decision = access.decide(pipeline({ repository_id: "99" }), WEB, "staging");
    expect(decision).toMatchObject({ allowed: false, reason: "not_app_pipeline" });
    expect(decision.allowed === false && decision.message).toMatch(/web/);
  });

  it("a pipeline of any app listing a shared repository may verify it", () => {
    const gitlab = { ...issuer, name: "gitlab" };
    expect(access.decide(pipeline({ project_id: "2" }, { issuer: gitlab }), SHARED, "staging").allowed).toBe(
      true,
    );
    expect(access.decide(pipeline({ project_id: "3" }, { issuer: gitlab }), SHARED, "staging").allowed).toBe(
      false,
    );
  });

  it("refuses every caller for a repository no app lists, with one message", () => {
    const callers = [pipeline({ repository_id: "74" }), person(["release-managers"]), minted("staging")];
    const decisions = callers.map((c) =>
      access.decide(c, "registry.example.com/private/anything", "staging"),
    );
    expect(decisions.map((d) => d.allowed === false && d.reason)).toEqual([
      "repository_not_configured",
      "repository_not_configured",
      "repository_not_configured",
    ]);
    expect(new Set(decisions.map((d) => d.allowed === false && d.message)).size).toBe(1);
  });

  it("compares repositories exactly: a prefix or another registry is not the app's", () => {
    const web = pipeline({ repository_id: "74" });
    expect(access.decide(web, `${WEB}/sub`, "staging").allowed).toBe(false);
    expect(access.decide(web, "other.example.com/staging/web", "staging").allowed).toBe(false);
  });

  it("lets a Ferry-minted credential verify only for its own environment", () => {
    expect(access.decide(minted("staging"), WEB, "staging")).toEqual({ allowed: true });
    expect(access.decide(minted("staging"), API, "staging")).toEqual({ allowed: true });
    expect(access.decide(minted("staging"), WEB_PROD, "production")).toMatchObject({
      allowed: false,
      reason: "environment_mismatch",
    });
    expect(access.decide(minted(undefined), WEB, "staging")).toMatchObject({
      reason: "environment_mismatch",
    });
  });

  it("lets a person verify only as a member of a readers group", () => {
    expect(access.decide(person(["release-managers"]), WEB, "production")).toEqual({ allowed: true });
    expect(access.decide(person(["engineering"]), WEB, "staging")).toMatchObject({ reason: "not_a_reader" });
    expect(access.decide(person([]), WEB, "staging")).toMatchObject({ reason: "not_a_reader" });
  });

  it("with no readers configured, no person may verify", () => {
    const none = new VerificationAccess({ apps, appPolicies, readers: [] });
    expect(none.decide(person(["release-managers"]), WEB, "staging")).toMatchObject({
      reason: "not_a_reader",
    });
  });
});
