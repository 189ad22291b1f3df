import { describe, expect, it } from "vitest";
import type { CompiledApprovalRules } from "../../src/promotion/approvals/rules.ts";
import type { ApprovalVote } from "../../src/promotion/approvals/tally.ts";
import { approvalsGate, type EnvironmentRules, type GateFacts } from "../../src/promotion/gates.ts";
import { gateRecord } from "../../src/promotion/record.ts";
import { promotionResource } from "../../src/promotion/resource.ts";

/** The structured `needs` of a waiting approvals gate, as stored and as shown on the resource. */

const D = `sha256:${"c".repeat(64)}`;
const HOUR = 3_600_000;

const rules = (over: Partial<CompiledApprovalRules> = {}): CompiledApprovalRules => ({
  environment: "production",
  count: 2,
  groups: ["release"],
  requireEach: [],
  expiresAfter: HOUR,
  requireLinkedIdentity: false,
  policyHash: "h1",
  issuerLinks: new Map(),
  ...over,
});

const vote = (sub: string, over: Partial<ApprovalVote> = {}): ApprovalVote => ({
  id: `v-${sub}`,
  promotionId: "p1",
  app: "web",
  digest: D,
  environment: "production",
  issuer: "okta",
  subject: sub,
  decision: "approve",
  groups: ["release"],
  links: {},
  policyHash: "h1",
  createdAt: 1000,
  decidedAt: 1000,
  ...over,
});

const env: EnvironmentRules = {
  name: "production",
  freeze: { at: () => ({ frozen: false }) } as never,
  approvals: true,
};

const facts = (
  r: CompiledApprovalRules,
  votes: ApprovalVote[],
  over: Partial<GateFacts> = {},
): GateFacts => ({
  now: 2000,
  digest: D,
  rollback: false,
  source: { repository: "r/p", exists: true },
  breakGlass: false,
  approvals: { rules: r, app: "web", votes },
  ...over,
});

describe("the approvals gate's needs", () => {
  it.each<[string, CompiledApprovalRules, ApprovalVote[], { more: number; groups: string[] }]>([
    ["no vote yet", rules(), [], { more: 2, groups: ["release"] }],
    ["one of two", rules(), [vote("a")], { more: 1, groups: ["release"] }],
    [
      "an expired approval counts for nothing",
      rules(),
      [vote("a", { decidedAt: 2000 - HOUR })],
      { more: 2, groups: ["release"] },
    ],
    [
      "a reject counts for nothing",
      rules(),
      [vote("a", { decision: "reject" })],
      { more: 2, groups: ["release"] },
    ],
    [
      "requireEach: the groups nobody counting is in are listed",
      rules({ groups: ["release"], requireEach: ["security", "qa"] }),
      [vote("a"), vote("b", { groups: ["qa"] })],
      { more: 1, groups: ["security"] },
    ],
    [
      "requireEach: more is at least one per missing group",
      rules({ count: 1, groups: ["release"], requireEach: ["security", "qa"] }),
      [vote("a")],
      { more: 2, groups: ["security", "qa"] },
    ],
  ])("%s", (_name, r, votes, needs) => {
    const g = approvalsGate(env, facts(r, votes));
    expect(g).toMatchObject({ status: "waiting", reason: "awaiting_approvals", needs });
    expect(gateRecord(g).needs).toEqual(needs);
  });

  it("is absent once the gate passes, is skipped, or waits without the votes handed in", () => {
    expect(approvalsGate(env, facts(rules(), [vote("a"), vote("b")]))).not.toHaveProperty("needs");
    expect(approvalsGate(env, facts(rules(), [], { breakGlass: true }))).not.toHaveProperty("needs");
    expect(approvalsGate({ ...env, approvals: false }, facts(rules(), []))).not.toHaveProperty("needs");
    const blind = approvalsGate(env, facts(rules(), [], { approvals: undefined }));
    expect(blind.status).toBe("waiting");
    expect(blind).not.toHaveProperty("needs");
    expect(gateRecord(blind)).not.toHaveProperty("needs");
  });

  it("is shown on the promotion resource, beside the message", () => {
    const gate = gateRecord(approvalsGate(env, facts(rules(), [vote("a")])));
    const resource = promotionResource({
      id: "p1",
      app: "web",
      environment: "production",
      digest: D,
      from: null,
      sourceRepository: "r/p",
      targetRepository: "r/p",
      state: "waiting",
      version: 2,
      rollback: false,
      requestedBy: { issuer: "github", subject: "repo:acme/web:ref:refs/heads/main", kind: "pipeline" },
      requestHash: "0".repeat(64),
      createdAt: 0,
      updatedAt: 1,
      nextCheckAt: 5,
      gates: [gate],
      steps: [],
    });
    expect(resource.gates).toEqual([
      {
        name: "approvals",
        status: "waiting",
        reason: "awaiting_approvals",
        message: "production needs 1 more approval (from release)",
        needs: { more: 1, groups: ["release"] },
      },
    ]);
  });
});
