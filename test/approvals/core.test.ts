import { describe, expect, it } from "vitest";
import type { HumanPrincipal, PipelinePrincipal } from "../../src/identity/principal.ts";
import { compileApprovalRules, environmentPolicyHash } from "../../src/promotion/approvals/compile.ts";
import { approverEligibility } from "../../src/promotion/approvals/eligibility.ts";
import type { CompiledApprovalRules } from "../../src/promotion/approvals/rules.ts";
import { type ApprovalVote, tallyApprovals } from "../../src/promotion/approvals/tally.ts";
import { approvalsGate, type EnvironmentRules, type GateFacts } from "../../src/promotion/gates.ts";
import type { PromotionRecord, Requester } from "../../src/promotion/record.ts";
import { requesterOf } from "../../src/promotion/requester.ts";

const D = `sha256:${"a".repeat(64)}`;
const HOUR = 3_600_000;

function rules(over: Partial<CompiledApprovalRules> = {}): CompiledApprovalRules {
  return {
    environment: "production",
    count: 2,
    groups: ["release"],
    requireEach: [],
    expiresAfter: HOUR,
    requireLinkedIdentity: true,
    policyHash: "h1",
    issuerLinks: new Map([
      ["okta", { github: "github_id", gitlab: "gitlab_username" }],
      ["entra", { github: "extension_github" }],
    ]),
    ...over,
  };
}

function person(
  sub: string,
  groups: string[],
  claims: Record<string, unknown> = {},
  issuer = "okta",
): HumanPrincipal {
  return {
    kind: "human",
    issuer: { name: issuer, url: `https://${issuer}.example`, platform: "generic" },
    subject: sub,
    claims: { sub, ...claims },
    tokenSha256: "0".repeat(64),
    groups,
  };
}

const pipeline: PipelinePrincipal = {
  kind: "pipeline",
  via: "oidc",
  issuer: { name: "github", url: "https://token.actions.githubusercontent.com", platform: "github" },
  subject: "repo:acme/web:ref:refs/heads/main",
  claims: { actor: "OctoCat", actor_id: 583231, repository: "acme/web", run_id: "1" },
  tokenSha256: "0".repeat(64),
};

function promotion(requestedBy: Requester, over: Partial<PromotionRecord> = {}): PromotionRecord {
  return {
    id: "p1",
    app: "web",
    environment: "production",
    digest: D,
    from: "staging",
    sourceRepository: "r/s",
    targetRepository: "r/p",
    state: "waiting",
    version: 3,
    rollback: false,
    requestedBy,
    requestHash: "x",
    createdAt: 0,
    updatedAt: 0,
    nextCheckAt: 1,
    gates: [{ name: "approvals", status: "waiting", reason: "awaiting_approvals" }],
    steps: [],
    ...over,
  };
}

const byPipeline = promotion(requesterOf(pipeline));

function vote(sub: string, over: Partial<ApprovalVote> = {}): ApprovalVote {
  return {
    id: `v-${sub}`,
    promotionId: "p1",
    app: "web",
    digest: D,
    environment: "production",
    issuer: "okta",
    subject: sub,
    decision: "approve",
    groups: ["release"],
    links: { github: [`id-${sub}`] },
    policyHash: "h1",
    createdAt: 1000,
    decidedAt: 1000,
    ...over,
  };
}

describe("requesterOf records the pipeline actor for separation of duties", () => {
  it("keeps GitHub's actor, actor_id and platform", () => {
    expect(requesterOf(pipeline)).toMatchObject({ actor: "OctoCat", actorId: "583231", platform: "github" });
  });

  it("keeps a person's link claims from their issuer's links", () => {
    const r = requesterOf(person("u1", ["on-call"], { github_id: 77 }), { github: "github_id" });
    expect(r).toMatchObject({ kind: "human", links: { github: ["77"] } });
  });
});

describe("approverEligibility", () => {
  const cases: [string, HumanPrincipal | PipelinePrincipal, PromotionRecord, string | undefined][] = [
    ["an eligible approver", person("u1", ["release"], { github_id: "1" }), byPipeline, undefined],
    ["a pipeline token", pipeline, byPipeline, "not_a_person"],
    ["someone outside the groups", person("u1", ["eng"], { github_id: "1" }), byPipeline, "not_in_group"],
    [
      "the pipeline actor by id",
      person("u1", ["release"], { github_id: 583231 }),
      byPipeline,
      "pipeline_actor_cannot_approve",
    ],
    [
      "the pipeline actor by login, case-insensitively",
      person("u1", ["release"], { github_id: "octocat" }),
      byPipeline,
      "pipeline_actor_cannot_approve",
    ],
    [
      "the actor under another SSO issuer",
      person("e1", ["release"], { extension_github: "583231" }, "entra"),
      byPipeline,
      "pipeline_actor_cannot_approve",
    ],
    ["an approver without a link claim", person("u1", ["release"]), byPipeline, "sod_unverifiable"],
    [
      "an approver with only another platform's link",
      person("u1", ["release"], { gitlab_username: "ada" }),
      byPipeline,
      "sod_unverifiable",
    ],
    [
      "the requesting person",
      person("u1", ["release"], { github_id: "1" }),
      promotion({ issuer: "okta", subject: "u1", kind: "human" }),
      "requester_cannot_approve",
    ],
    [
      "the requesting person under another identity",
      person("e1", ["release"], { extension_github: "Ada" }, "entra"),
      promotion({ issuer: "okta", subject: "u1", kind: "human", links: { github: ["ada"] } }),
      "same_person",
    ],
    [
      "a finished promotion",
      person("u1", ["release"], { github_id: "1" }),
      { ...byPipeline, state: "promoted" },
      "promotion_finished",
    ],
    [
      "a running promotion",
      person("u1", ["release"], { github_id: "1" }),
      { ...byPipeline, state: "running" },
      "not_awaiting_approval",
    ],
    [
      "a break-glass promotion (approvals skipped)",
      person("u1", ["release"], { github_id: "1" }),
      { ...byPipeline, gates: [{ name: "approvals", status: "skipped", reason: "break_glass" }] },
      "not_awaiting_approval",
    ],
    [
      "a promotion still pending (early approval)",
      person("u1", ["release"], { github_id: "1" }),
      { ...byPipeline, state: "pending", gates: [] },
      undefined,
    ],
  ];
  for (const [name, who, p, reason] of cases)
    it(`${name}: ${reason ?? "eligible"}`, () => {
      const e = approverEligibility(rules(), who, p);
      expect(e.eligible ? undefined : e.reason).toBe(reason);
      // The refusal names the rule, never the requester or the actor.
      if (!e.eligible) expect(e.message).not.toMatch(/octocat|583231|u1\b/i);
    });

  it("admits an approver without links when requireLinkedIdentity is false", () => {
    expect(
      approverEligibility(rules({ requireLinkedIdentity: false }), person("u1", ["release"]), byPipeline),
    ).toEqual({
      eligible: true,
    });
  });

  it("admits a member of a requireEach group that is not in groups", () => {
    const r = rules({ requireEach: ["security"] });
    expect(approverEligibility(r, person("u1", ["security"], { github_id: "1" }), byPipeline).eligible).toBe(
      true,
    );
  });

  it("checks only the person for a review, whatever the state", () => {
    const done = { ...byPipeline, state: "promoted" as const };
    expect(
      approverEligibility(rules(), person("u1", ["release"], { github_id: "1" }), done, {
        purpose: "review",
      }),
    ).toEqual({
      eligible: true,
    });
  });
});

describe("tallyApprovals", () => {
  it("counts distinct people, once each across identities", () => {
    const t = tallyApprovals(
      rules(),
      byPipeline,
      [vote("a"), vote("b", { issuer: "entra", subject: "a2", links: { github: ["ID-A"] } })],
      2000,
    );
    expect(t.counting).toBe(1);
    expect(t.standings[1]).toMatchObject({ counts: false, whyNot: "same_person" });
    expect(t.satisfied).toBe(false);
    expect(tallyApprovals(rules(), byPipeline, [vote("a"), vote("b")], 2000).satisfied).toBe(true);
  });

  it("stops counting an approval once expiresAfter has passed, or the policy hash changed", () => {
    const t = tallyApprovals(rules(), byPipeline, [vote("a"), vote("b", { policyHash: "h0" })], 1000 + HOUR);
    expect(t.standings.map((s) => s.whyNot)).toEqual(["expired", "policy_changed"]);
    expect(t.stale).toEqual({ expired: 1, policy_changed: 1 });
    expect(t.more).toBe(2);
  });

  it("needs one counting approver from each requireEach group", () => {
    const r = rules({ groups: ["release", "security"], requireEach: ["security"] });
    const two = tallyApprovals(r, byPipeline, [vote("a"), vote("b")], 2000);
    expect([two.more, two.missingGroups, two.satisfied]).toEqual([0, ["security"], false]);
    const mixed = tallyApprovals(r, byPipeline, [vote("a"), vote("b", { groups: ["security"] })], 2000);
    expect(mixed.satisfied).toBe(true);
  });

  it("never counts a reject", () => {
    const t = tallyApprovals(rules({ count: 1 }), byPipeline, [vote("a", { decision: "reject" })], 2000);
    expect([t.counting, t.standings[0]?.whyNot]).toEqual([0, "rejected"]);
  });
});

describe("the approvals gate", () => {
  const env: EnvironmentRules = {
    name: "production",
    freeze: { at: () => ({ frozen: false }) } as never,
    approvals: true,
  };
  const facts = (votes: ApprovalVote[], over: Partial<GateFacts> = {}): GateFacts => ({
    now: 2000,
    digest: D,
    rollback: false,
    source: { repository: "r/s", exists: true },
    breakGlass: false,
    approvals: { rules: rules(), app: "web", votes },
    ...over,
  });

  it("waits saying how many more and from which groups, then passes", () => {
    expect(approvalsGate(env, facts([vote("a")]))).toMatchObject({
      status: "waiting",
      reason: "awaiting_approvals",
      message: "production needs 1 more approval (from release)",
    });
    expect(approvalsGate(env, facts([vote("a"), vote("b")]))).toMatchObject({
      status: "passed",
      reason: "approved",
    });
  });

  it("says why approvals stopped counting", () => {
    const g = approvalsGate(env, facts([vote("a"), vote("b", { policyHash: "h0" })]));
    expect(g.status).toBe("waiting");
    expect(g.message).toContain("given under an earlier policy");
  });

  it("waits (fails closed) when the votes were not handed in, and is skipped for break-glass", () => {
    expect(approvalsGate(env, facts([], { approvals: undefined })).status).toBe("waiting");
    expect(approvalsGate(env, facts([], { breakGlass: true }))).toMatchObject({
      status: "skipped",
      reason: "break_glass",
    });
    expect(approvalsGate({ ...env, approvals: false }, facts([]))).toMatchObject({
      reason: "not_configured",
    });
  });
});

describe("the policy hash", () => {
  it("is the same for the same entry in any key order, and changes with the rules", () => {
    const a = { name: "p", approvals: { count: 2, groups: ["r"] }, require: {} } as never;
    const b = { require: {}, approvals: { groups: ["r"], count: 2 }, name: "p" } as never;
    const c = { name: "p", approvals: { count: 3, groups: ["r"] }, require: {} } as never;
    expect(environmentPolicyHash(a)).toBe(environmentPolicyHash(b));
    expect(environmentPolicyHash(a)).not.toBe(environmentPolicyHash(c));
    expect(environmentPolicyHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("compiles only environments with approvals", () => {
    const compiled = compileApprovalRules(
      [
        {
          name: "p",
          approvals: {
            count: 1,
            groups: ["r"],
            expiresAfter: 1,
            separationOfDuties: { requireLinkedIdentity: true },
          },
        },
        { name: "s" },
      ] as never,
      new Map(),
    );
    expect([...compiled.keys()]).toEqual(["p"]);
  });
});
