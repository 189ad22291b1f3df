import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";
import { readClaim } from "../../src/identity/claim-path.ts";
import { compileMatcher, globRegex } from "../../src/identity/matchers.ts";
import { compilePolicy, formatDecision, PolicyCompileError } from "../../src/identity/policy.ts";
import { lintRule, startsWithWildcard } from "../../src/identity/policy-lint.ts";
import { compileTrustPolicies, productionEnvironments } from "../../src/identity/trust-policies.ts";
import { circleciClaims, githubClaims, gitlabClaims, kubernetesClaims } from "./fixtures.ts";

const base = { iss: "https://token.actions.githubusercontent.com", aud: "https://ferry.example.com" };

describe("matchers", () => {
  it("exact and any-of compare canonical text: numbers and booleans as JSON writes them", () => {
    expect(compileMatcher("74").test("74")).toBe(true);
    expect(compileMatcher(74).test("74")).toBe(true);
    expect(compileMatcher(true).test("true")).toBe(true);
    expect(compileMatcher(["push", "workflow_dispatch"]).test("push")).toBe(true);
    expect(compileMatcher(["push", "workflow_dispatch"]).test("pull_request")).toBe(false);
    expect(compileMatcher("main").test("main ")).toBe(false);
  });

  it("globs: * stays within a path segment, ** crosses them, everything else is literal", () => {
    expect(globRegex("refs/heads/*").test("refs/heads/main")).toBe(true);
    expect(globRegex("refs/heads/*").test("refs/heads/feature/x")).toBe(false);
    expect(globRegex("refs/heads/**").test("refs/heads/feature/x")).toBe(true);
    expect(globRegex("v?.*").test("v1.2")).toBe(true);
    expect(globRegex("a.b").test("axb")).toBe(false);
    expect(globRegex("repo:acme/(web)").test("repo:acme/(web)")).toBe(true);
  });

  it("regexes are always anchored, whatever the author wrote", () => {
    const m = compileMatcher({ regex: "main|release/.*" });
    expect(m.test("main")).toBe(true);
    expect(m.test("release/1.2")).toBe(true);
    expect(m.test("not-main")).toBe(false);
    expect(m.test("main-evil")).toBe(false);
  });
});

describe("dotted claim paths", () => {
  it("read nested claims whose own names contain dots, and flat dotted names", () => {
    const k8s = kubernetesClaims(base);
    expect(readClaim(k8s, "kubernetes.io.namespace")).toBe("deploy");
    expect(readClaim(k8s, "kubernetes.io.serviceaccount.name")).toBe("deployer");
    expect(readClaim(k8s, "kubernetes.io.pod.missing")).toBeUndefined();
    const cci = circleciClaims(base);
    expect(readClaim(cci, "oidc.circleci.com/project-id")).toBe("7a9e5b1c-2d3f-4e5a-8b6c-9d0e1f2a3b4c");
    expect(readClaim({ a: { b: 1 } }, "__proto__")).toBeUndefined();
    expect(readClaim({ a: { b: 1 } }, "a.constructor")).toBeUndefined();
  });
});

describe("policies", () => {
  const policy = compilePolicy(
    "credential deploy-production",
    [
      { issuer: "gitlab", claims: { project_id: "20" } },
      {
        issuer: "github",
        claims: {
          repository_id: "74",
          event_name: ["push", "workflow_dispatch"],
          ref: { glob: "refs/heads/*" },
          job_workflow_ref: { regex: "acme/web/\\.github/workflows/release\\.yml@refs/heads/main" },
        },
      },
    ],
    "credentials[1].allow",
  );

  it("allows when one rule's issuer and every claim match", () => {
    const decision = policy.evaluate({ issuer: "github", claims: githubClaims(base) });
    expect(decision.allowed).toBe(true);
    expect(decision.matchedRule).toBe(1);
    expect(policy.match({ issuer: "github", claims: githubClaims(base) })).toBe(1);
    expect(formatDecision(decision).at(-1)).toBe("allowed by rule 2");
  });

  it("explains a denial claim by claim, per rule", () => {
    const decision = policy.evaluate({
      issuer: "github",
      claims: githubClaims(base, { event_name: "pull_request", ref: "refs/pull/7/merge" }),
    });
    expect(decision.allowed).toBe(false);
    expect(
      policy.match({ issuer: "github", claims: githubClaims(base, { event_name: "pull_request" }) }),
    ).toBeUndefined();
    expect(policy.match({ issuer: "gitlab", claims: githubClaims(base) })).toBeUndefined();
    const rule = decision.rules[1]!;
    expect(rule.checks.filter((c) => !c.matched).map((c) => c.claim)).toEqual(["event_name", "ref"]);
    expect(rule.checks.find((c) => c.claim === "event_name")).toMatchObject({
      actual: '"pull_request"',
      expected: 'one of ["push","workflow_dispatch"]',
    });
    const text = formatDecision(decision);
    expect(text).toContain("rule 1 (issuer gitlab): not this token's issuer");
    expect(text).toContain(
      '  FAIL event_name = "pull_request" does not match one of ["push","workflow_dispatch"]',
    );
    expect(text.at(-1)).toBe("denied: no rule matched");
  });

  it("matches list claims when any element matches, never objects", () => {
    const p = compilePolicy(
      "x",
      [{ issuer: "k", claims: { aud: "https://kubernetes.default.svc", "kubernetes.io": "x" } }],
      "x",
    );
    const claims = kubernetesClaims({ ...base, aud: ["https://kubernetes.default.svc", "ferry"] });
    const checks = p.evaluate({ issuer: "k", claims }).rules[0]!.checks;
    expect(checks.map((c) => c.matched)).toEqual([true, false]);
  });

  it("GitLab's integer runner_id matches a number or a string in the config", () => {
    const claims = gitlabClaims(base);
    for (const spec of [1, "1", [1, 2]]) {
      const p = compilePolicy("x", [{ issuer: "gitlab", claims: { runner_id: spec } }], "x");
      expect(p.evaluate({ issuer: "gitlab", claims }).allowed).toBe(true);
    }
  });

  it("an invalid regex is an error naming where it is written", () => {
    expect(() =>
      compilePolicy("x", [{ issuer: "g", claims: { ref: { regex: "(" } } }], "credentials[0].allow"),
    ).toThrow(PolicyCompileError);
    try {
      compilePolicy("x", [{ issuer: "g", claims: { ref: { regex: "(" } } }], "credentials[0].allow");
    } catch (err) {
      expect((err as PolicyCompileError).path).toBe('credentials[0].allow[0].claims["ref"]');
    }
  });
});

const CONFIG_HEAD = `
store: { sqlite: ./ferry.db }
keys: { signing: ./k.pem }
issuers:
  - { name: github, url: https://token.actions.githubusercontent.com, audience: https://ferry.example.com }
  - { name: gitlab, url: https://gitlab.com, audience: https://ferry.example.com }
  - { name: k8s, url: https://kubernetes.default.svc, audience: ferry }
environments:
  - { name: staging }
  - { name: production, after: staging }
`;

function problems(text: string): { path: string; message: string }[] {
  try {
    parseConfigText(text, "/etc/ferry/ferry.yaml", {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected the config to be refused");
}

describe("config load", () => {
  it("an invalid regex is a config error with its path", () => {
    const text = `${CONFIG_HEAD}
credentials:
  - name: deploy
    environment: staging
    type: ferry-jwt
    allow: [{ issuer: github, claims: { ref: { regex: "refs/heads/(main" } } }]
`;
    expect(problems(text)).toEqual([
      {
        path: "credentials[0].allow[0].claims.ref.regex",
        message: expect.stringMatching(/^invalid regex: /),
      },
    ]);
  });

  it("plain http issuers are refused unless loopback and allowed", () => {
    const text = `
store: { sqlite: ./ferry.db }
keys: { signing: ./k.pem }
issuers:
  - { name: a, url: "http://issuer.example", audience: x, allowInsecureHttp: true }
  - { name: b, url: "http://127.0.0.1:9000", audience: x }
  - { name: c, url: "http://127.0.0.1:9000/c", audience: x, allowInsecureHttp: true }
  - { name: d, url: "https://issuer.example", jwksUri: "http://issuer.example/jwks", audience: x }
`;
    expect(problems(text)).toEqual([
      { path: "issuers[0].url", message: expect.stringMatching(/loopback/) },
      { path: "issuers[1].url", message: expect.stringMatching(/allowInsecureHttp/) },
      { path: "issuers[3].jwksUri", message: expect.stringMatching(/https/) },
    ]);
  });

  it("session tags and policies are checked against STS's rules", () => {
    const text = `${CONFIG_HEAD}
credentials:
  - name: aws
    environment: staging
    type: aws-sts
    aws:
      roleArn: arn:aws:iam::123456789012:role/deploy
      sessionTags: { "aws:repo": repository, "Repo#1": repository, repo: repository, REPO: ref }
      sessionPolicy: "not json"
    allow: [{ issuer: github, claims: { repository_id: "74" } }]
  - name: jwt
    environment: staging
    type: ferry-jwt
    aws: { roleArn: arn:aws:iam::123456789012:role/deploy }
    allow: [{ issuer: github, claims: { repository_id: "74" } }]
`;
    const found = problems(text).map((p) => p.path);
    expect(found).toEqual(
      expect.arrayContaining([
        'credentials[0].aws.sessionTags["aws:repo"]',
        'credentials[0].aws.sessionTags["Repo#1"]',
        "credentials[0].aws.sessionTags.REPO",
        "credentials[0].aws.sessionPolicy",
        "credentials[1].aws",
      ]),
    );
  });
});

describe("risky policy warnings", () => {
  const warningsOf = (credentials: string, apps = "") => {
    const { config } = parseConfigText(`${CONFIG_HEAD}${credentials}${apps}`, "/etc/ferry/ferry.yaml", {});
    return compileTrustPolicies(config).warnings;
  };

  it("a well-pinned GitHub production policy has no warnings", () => {
    expect(
      warningsOf(`
credentials:
  - name: deploy
    environment: production
    type: ferry-jwt
    allow:
      - issuer: github
        claims:
          repository_id: "74"
          ref: refs/heads/main
          event_name: [push, workflow_dispatch]
          runner_environment: github-hosted
`),
    ).toEqual([]);
  });

  it("flags unpinned ids, leading sub wildcards, risky events and self-hosted runners", () => {
    const warnings = warningsOf(`
credentials:
  - name: deploy
    environment: production
    type: ferry-jwt
    allow:
      - { issuer: github, claims: { sub: { glob: "*:ref:refs/heads/main" } } }
      - { issuer: github, claims: { repository_id: "74", event_name: { glob: "*" }, runner_environment: github-hosted } }
      - { issuer: gitlab, claims: { project_path: acme/api, runner_environment: gitlab-hosted } }
      - { issuer: k8s }
`);
    const at = (path: string) => warnings.filter((w) => w.path === path).map((w) => w.message);
    expect(at("credentials[0].allow[0]")).toEqual([
      expect.stringMatching(/pins no immutable \*_id claim/),
      expect.stringMatching(/starts `sub` with a wildcard/),
      expect.stringMatching(
        /allows pull_request_target, workflow_run, issue_comment runs to a production credential \(no event_name/,
      ),
      expect.stringMatching(/self-hosted runners are allowed/),
    ]);
    expect(at("credentials[0].allow[1]")).toEqual([
      expect.stringMatching(/allows pull_request_target, workflow_run, issue_comment runs/),
    ]);
    expect(at("credentials[0].allow[2]")).toEqual([
      expect.stringMatching(/pins no immutable \*_id claim \(project_id/),
    ]);
    expect(at("credentials[0].allow[3]")).toEqual([expect.stringMatching(/every token from issuer "k8s"/)]);
  });

  it("GitHub's immutable sub pins the IDs; an explicit self-hosted choice is not flagged", () => {
    const rule = {
      issuer: "github",
      claims: { sub: "repo:acme@65/web@74:environment:production", runner_environment: "self-hosted" },
    };
    expect(lintRule(rule, "x", { platforms: new Map([["github", "github"]]), production: false })).toEqual(
      [],
    );
  });

  it("risky events on a staging credential are not flagged; apps' pipelines are linted too", () => {
    const warnings = warningsOf(
      `
credentials:
  - name: deploy
    environment: staging
    type: ferry-jwt
    allow: [{ issuer: github, claims: { repository_id: "74", runner_environment: github-hosted } }]
`,
      `
apps:
  - name: web
    images: { staging: r/web }
    pipelines: [{ issuer: github, claims: { repository: acme/web, runner_environment: github-hosted } }]
`,
    );
    expect(warnings).toEqual([
      { path: "apps[0].pipelines[0]", message: expect.stringMatching(/pins no immutable/) },
    ]);
  });

  it("knows wildcard starts and production environments", () => {
    expect(startsWithWildcard({ glob: "?epo:*" })).toBe(true);
    expect(startsWithWildcard({ regex: ".*:ref:refs/heads/main" })).toBe(true);
    expect(startsWithWildcard({ regex: "(?:[a-z]+):x" })).toBe(true);
    expect(startsWithWildcard({ regex: "repo:acme/.*" })).toBe(false);
    expect(startsWithWildcard({ glob: "repo:acme/*" })).toBe(false);
    expect(startsWithWildcard("*")).toBe(false);
    const envs = productionEnvironments({
      environments: [
        { name: "dev", require: {} },
        { name: "staging", after: "dev", require: {} },
        { name: "live", after: "staging", require: {} },
        { name: "prod-eu", require: {} },
      ] as never,
    });
    expect([...envs].sort()).toEqual(["live", "prod-eu"]);
  });
});
