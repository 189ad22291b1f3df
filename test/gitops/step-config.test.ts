import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";
import { compileGitops } from "../../src/gitops/config.ts";
import { countingApprovers } from "../../src/gitops/create.ts";
import { compileTemplate, promotionTrailer, templateProblem } from "../../src/gitops/message.ts";
import type { ApprovalVote } from "../../src/promotion/approvals/tally.ts";

const D = `sha256:${"a".repeat(64)}`;

function configWith(gitops: string, extra = ""): string {
  return `
store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
environments: [{ name: staging }, { name: production, after: staging }]
apps:
  - name: web
    images: { staging: reg.test/staging/web, production: reg.test/prod/web }
    gitops:
${gitops
  .trim()
  .split("\n")
  .map((l) => `      ${l}`)
  .join("\n")}
${extra}`;
}

function problemsOf(text: string, env: Record<string, string> = {}): { path: string; message: string }[] {
  try {
    parseConfigText(text, "/etc/ferry/ferry.yaml", env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => ({ path: p.path, message: p.message }));
  }
  throw new Error("expected the config to be refused");
}

describe("apps[].gitops config", () => {
  it("compiles each kind with its defaults; relative files resolve against the config's folder", () => {
    const { config, baseDir } = parseConfigText(
      configWith(`
staging: { repo: "https://git.example.com/acme/deploy.git", path: staging/kustomization.yaml, kind: kustomize, image: web, auth: { token: "\${GIT_TOKEN}" } }
production:
  repo: "git@git.example.com:acme/deploy.git"
  branch: release
  path: prod/values.yaml
  kind: helm-values
  repository: image.repository
  digest: image.digest
  auth: { sshKeyFile: ./keys/deploy, knownHostsFile: ./keys/known_hosts }
  mode: pull-request
  pullRequest: { forge: github, api: "https://api.github.com", owner: acme, repo: deploy, token: "\${GH_TOKEN}" }
`),
      "/etc/ferry/ferry.yaml",
      { GIT_TOKEN: "t0k3n", GH_TOKEN: "ghp" },
    );
    const plan = compileGitops(config, baseDir);
    expect(plan.dir).toBe("/etc/ferry/gitops");
    expect(plan.pushRetries).toBe(5);
    const staging = plan.get("web", "staging")!;
    expect(staging).toMatchObject({
      branch: "main",
      mode: "push",
      repository: "reg.test/staging/web",
      author: { name: "Ferry", email: "ferry@localhost" },
      remote: { url: "https://git.example.com/acme/deploy.git", auth: { kind: "token", token: "t0k3n" } },
      target: { kind: "kustomize", path: "staging/kustomization.yaml", image: "web", keepTag: false },
    });
    const production = plan.get("web", "production")!;
    expect(production.remote.auth).toEqual({
      kind: "ssh",
      privateKeyFile: "/etc/ferry/keys/deploy",
      knownHostsFile: "/etc/ferry/keys/known_hosts",
    });
    expect(production.pullRequest).toMatchObject({
      forge: "github",
      timeout: 7 * 86_400_000,
      pollInterval: 60_000,
    });
    expect(production.target).toEqual({
      kind: "helm-values",
      path: "prod/values.yaml",
      repository: "image.repository",
      digest: "image.digest",
    });
    expect(plan.get("web", "dev")).toBeUndefined();
  });

  it("reports every bad target with its path", () => {
    const problems = problemsOf(
      configWith(`
staging: { repo: "https://user:pw@git.example.com/d.git", path: /etc/passwd, kind: yaml, field: "spec..image" }
production: { repo: "http://git.example.com/d.git", path: a.yaml, kind: helm-values, mode: pull-request, message: "Deploy {nope}" }
`),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        {
          path: "apps[0].gitops.staging.repo",
          message: expect.stringContaining("must not carry credentials"),
        },
        { path: "apps[0].gitops.staging.path", message: expect.stringContaining("inside the repository") },
        { path: "apps[0].gitops.staging.field", message: expect.stringContaining("a key must follow") },
        { path: "apps[0].gitops.production.repo", message: expect.stringContaining("loopback") },
        { path: "apps[0].gitops.production.message", message: expect.stringContaining("{nope}") },
        { path: "apps[0].gitops.production.reference", message: expect.stringContaining("either") },
        {
          path: "apps[0].gitops.production.pullRequest",
          message: expect.stringContaining("needs `pullRequest`"),
        },
      ]),
    );
  });

  it("refuses a target for an environment the app has no repository in, and a forge without its project", () => {
    const text = `
store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
environments: [{ name: staging }, { name: production }]
apps:
  - name: web
    images: { staging: reg.test/staging/web }
    gitops:
      production: { repo: "https://g.test/d.git", path: k.yaml, kind: kustomize, image: web }
      staging:
        repo: "https://g.test/d.git"
        path: k.yaml
        kind: kustomize
        image: web
        mode: pull-request
        pullRequest: { forge: gitlab, api: "https://gitlab.test", token: x }
`;
    expect(problemsOf(text)).toEqual(
      expect.arrayContaining([
        { path: "apps[0].gitops.production", message: expect.stringContaining("no repository") },
        {
          path: "apps[0].gitops.staging.pullRequest.project",
          message: expect.stringContaining("needs `project`"),
        },
      ]),
    );
  });
});

describe("commit messages", () => {
  const facts = {
    promotion: "0190-abc",
    app: "web",
    environment: "production",
    digest: D,
    repository: "reg.test/prod/web",
    requestedBy: "octocat (github)",
  };

  it("fills the template and appends Ferry's trailers, one Ferry-Approved-By per approver", () => {
    expect(compileTemplate()(facts)).toBe(
      `Promote web to production: aaaaaaaaaaaa\n\nFerry-Promotion: 0190-abc\nFerry-Digest: ${D}\nFerry-App: web\nFerry-Environment: production\n`,
    );
    const message = compileTemplate("deploy({app}): {repository}@{digest}\n\nby {requestedBy}")({
      ...facts,
      approvedBy: ["alice@example.com", "bob@example.com"],
    });
    expect(message).toContain(
      `deploy(web): reg.test/prod/web@${D}\n\nby octocat (github)\n\nFerry-Promotion: 0190-abc\n`,
    );
    expect(message).toContain("Ferry-Approved-By: alice@example.com\nFerry-Approved-By: bob@example.com\n");
    expect(promotionTrailer(message)).toBe("0190-abc");
  });

  it("a requester's name cannot forge a trailer, and only the last paragraph holds trailers", () => {
    const message = compileTemplate("{requestedBy}")({
      ...facts,
      requestedBy: "x\n\nFerry-Promotion: other",
    });
    expect(message.split("\n")[0]).toBe("x Ferry-Promotion: other");
    expect(promotionTrailer(message)).toBe("0190-abc");
    expect(promotionTrailer("Ferry-Promotion: 1\n\nbody")).toBeUndefined();
    expect(templateProblem("{app} {}")).toContain("unknown placeholder {}");
  });
});

describe("Ferry-Approved-By", () => {
  it("names each person whose approval counts, once; rejections and approvals that stopped counting are left out", () => {
    const vote = (over: Partial<ApprovalVote>) =>
      ({ issuer: "sso", subject: "u1", decision: "approve", ...over }) as ApprovalVote;
    expect(
      countingApprovers([
        { vote: vote({ name: "Alice" }), counts: true },
        { vote: vote({ name: "Alice" }), counts: true },
        { vote: vote({ subject: "u2" }), counts: true },
        { vote: vote({ subject: "u3", decision: "reject" }), counts: true },
        { vote: vote({ subject: "u4" }), counts: false, whyNot: "expired" },
      ]),
    ).toEqual(["Alice (sso)", "u2 (sso)"]);
    expect(countingApprovers(undefined)).toEqual([]);
  });
});
