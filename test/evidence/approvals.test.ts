/**
 * Approval attestations, the pure parts: the predicate built from a stored vote, its JSON Schema
 * (docs/approval-predicate.schema.json), which votes are attested, and which of Ferry's earlier
 * approval attestations a promotion's replace.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { describe, expect, it } from "vitest";
import {
  APPROVAL_PREDICATE_TYPE,
  approvalPredicate,
  attestedVotes,
  gatesPassedAt,
} from "../../src/evidence/approval.ts";
import { approvalAttestation, classify } from "../../src/evidence/attach.ts";
import type { ApprovalVote, VoteStanding } from "../../src/promotion/approvals/tally.ts";
import type { PromotionRecord } from "../../src/promotion/record.ts";
import { signStatement } from "../../src/signing/attachments.ts";
import type { Signer } from "../../src/signing/signer.ts";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const schema = JSON.parse(
  readFileSync(path.join(import.meta.dirname, "../../docs/approval-predicate.schema.json"), "utf8"),
);
const validate = addFormats(new Ajv({ strict: true, allErrors: true })).compile(schema);

const DIGEST = `sha256:${"ab".repeat(32)}`;
const T0 = Date.parse("2026-06-01T10:00:00Z");

function vote(over: Partial<ApprovalVote> = {}): ApprovalVote {
  return {
    id: "v1",
    promotionId: "p1",
    app: "web",
    digest: DIGEST,
    environment: "production",
    issuer: "sso",
    subject: "rm-1",
    name: "Rita Manager",
    decision: "approve",
    comment: "looks good",
    groups: ["release-managers"],
    links: {},
    policyHash: "c".repeat(64),
    createdAt: T0,
    decidedAt: T0 + 1000,
    ...over,
  };
}

const promotion = (over: Partial<PromotionRecord> = {}) =>
  ({
    id: "p1",
    app: "web",
    environment: "production",
    digest: DIGEST,
    from: "staging",
    state: "running",
    steps: [{ name: "copy", status: "done", attempts: 1, startedAt: T0 + 5000, finishedAt: T0 + 6000 }],
    updatedAt: T0 + 9000,
    ...over,
  }) as PromotionRecord;

const issuerUrls = new Map([["sso", "https://sso.example.com"]]);

describe("the approval predicate", () => {
  it("names the approver by issuer URL, and binds the decision to the promotion and the policy hash", () => {
    const predicate = approvalPredicate({
      verifierId: "https://ferry.example.com/",
      vote: vote(),
      promotion: promotion(),
      issuerUrls,
    });
    expect(predicate).toEqual({
      verifier: { id: "https://ferry.example.com" },
      approver: { issuer: "https://sso.example.com", subject: "rm-1", name: "Rita Manager" },
      decision: "approve",
      comment: "looks good",
      time: "2026-06-01T10:00:01.000Z",
      groups: ["release-managers"],
      promotion: {
        id: "p1",
        uri: "https://ferry.example.com/v1/promotions/p1",
        app: "web",
        environment: "production",
        from: "staging",
      },
      policy: {
        uri: "https://ferry.example.com/v1/policies/production",
        digest: { sha256: "c".repeat(64) },
      },
    });
    expect(validate(predicate), JSON.stringify(validate.errors)).toBe(true);
  });

  it("is what the schema accepts, and nothing else", () => {
    const good = approvalPredicate({
      verifierId: "https://f.test",
      vote: vote(),
      promotion: promotion(),
      issuerUrls,
    });
    expect(validate(good)).toBe(true);
    const { approver: _approver, ...noApprover } = good;
    for (const bad of [
      noApprover,
      { ...good, decision: "maybe" },
      { ...good, time: "yesterday" },
      { ...good, policy: { ...good.policy, digest: { sha256: "xyz" } } },
      { ...good, extra: true },
    ])
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
  });
});

describe("the attested votes", () => {
  const standing = (v: ApprovalVote, counts: boolean): VoteStanding => ({ vote: v, counts });

  it("are the approvals that counted, for a promotion that went on", () => {
    const counted = vote({ id: "a" });
    const stale = vote({ id: "b", subject: "rm-2" });
    const votes = attestedVotes(promotion(), [standing(counted, true), standing(stale, false)]);
    expect(votes.map((v) => v.id)).toEqual(["a"]);
  });

  it("are the reject that ended a rejected promotion", () => {
    const approved = vote({ id: "a" });
    const rejected = vote({ id: "r", subject: "rm-2", decision: "reject", comment: "no" });
    const p = promotion({
      state: "rejected",
      result: { reason: "rejected", message: "m", by: { issuer: "sso", subject: "rm-2" }, comment: "no" },
    });
    expect(attestedVotes(p, [standing(approved, true), standing(rejected, false)]).map((v) => v.id)).toEqual([
      "r",
    ]);
  });

  it("are counted at the time the gates passed: the first step's start", () => {
    expect(gatesPassedAt(promotion())).toBe(T0 + 5000);
    expect(gatesPassedAt(promotion({ steps: [] }))).toBe(T0 + 9000);
  });
});

describe("replacing Ferry's earlier approval attestations", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const signer: Signer = {
    keyId: "k",
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    sign: async (data) => new Uint8Array(sign("sha256", data, { key: privateKey, dsaEncoding: "der" })),
  };
  const envelopeOf = async (v: ApprovalVote, p: PromotionRecord, by: Signer = signer) => {
    const { envelope, payload } = await signStatement(
      by,
      "r.example/prod/web",
      DIGEST,
      APPROVAL_PREDICATE_TYPE,
      approvalPredicate({ verifierId: "https://f.test", vote: v, promotion: p, issuerUrls }),
    );
    return { bytes: new TextEncoder().encode(JSON.stringify(envelope)), payload };
  };
  const now = promotion({
    id: "p2",
    steps: [{ name: "copy", status: "running", attempts: 1, startedAt: T0 + 50_000 }],
  });
  const ownOf = (payload: Uint8Array) =>
    approvalAttestation(
      {
        publicKey,
        digest: DIGEST,
        promotion: { id: "p2", app: "web", environment: "production" },
        gatesPassedAt: gatesPassedAt(now),
      },
      payload,
    );

  it("replaces an earlier promotion's approvals of the same digest, app and environment", async () => {
    const mine = await envelopeOf(vote({ promotionId: "p2", decidedAt: T0 + 40_000 }), now);
    const earlier = await envelopeOf(vote(), promotion());
    expect(classify(earlier.bytes, false, ownOf(mine.payload))).toBe("superseded");
    expect(classify(mine.bytes, false, ownOf(mine.payload))).toBe("same");
  });

  it("keeps the rest: another promotion's that is newer, another environment's or app's, another key's", async () => {
    const mine = await envelopeOf(vote({ promotionId: "p2", decidedAt: T0 + 40_000 }), now);
    const own = ownOf(mine.payload);
    const newer = await envelopeOf(vote({ decidedAt: T0 + 60_000 }), promotion({ id: "p3" }));
    const canary = await envelopeOf(vote(), promotion({ environment: "canary" }));
    const otherApp = await envelopeOf(vote(), promotion({ app: "api" }));
    const { privateKey: k2, publicKey: p2 } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const foreign = await envelopeOf(vote(), promotion(), {
      keyId: "x",
      publicKeyPem: p2.export({ type: "spki", format: "pem" }).toString(),
      sign: async (data) => new Uint8Array(sign("sha256", data, { key: k2, dsaEncoding: "der" })),
    });
    for (const other of [newer, canary, otherApp, foreign])
      expect(classify(other.bytes, false, own)).toBe("other");
  });
});
