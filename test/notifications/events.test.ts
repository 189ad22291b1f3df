import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { standardHeaders } from "../../src/notifications/deliver.ts";
import { type NotifiedPromotion, notificationEvents } from "../../src/notifications/events.ts";
import { renderBody, slackPayload, standardPayload } from "../../src/notifications/payload.ts";
import type { GateRecord } from "../../src/promotion/record.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

/** A stored promotion of web into production, with what the row of the table changes. */
function promotion(over: Partial<NotifiedPromotion> = {}): NotifiedPromotion {
  return {
    id: "0190c4d2-0000-7000-8000-000000000001",
    app: "web",
    environment: "production",
    digest: DIGEST,
    from: "staging",
    sourceRepository: "127.0.0.1:5000/staging/web",
    targetRepository: "127.0.0.1:5000/prod/web",
    state: "pending",
    version: 1,
    rollback: false,
    requestedBy: { issuer: "github", subject: "repo:acme/web:ref:refs/heads/main", kind: "pipeline" },
    requestHash: "0".repeat(64),
    createdAt: Date.UTC(2026, 0, 1),
    updatedAt: Date.UTC(2026, 0, 1, 0, 5),
    nextCheckAt: null,
    gates: [],
    steps: [],
    ...over,
  };
}

const gate = (status: GateRecord["status"], reason: string, extra: Partial<GateRecord> = {}): GateRecord => ({
  name: "approvals",
  status,
  reason,
  ...extra,
});
const glass = { justification: "outage", at: Date.UTC(2026, 0, 1), reviewBy: Date.UTC(2026, 0, 2) };
const soaking: GateRecord = { name: "soak", status: "waiting", reason: "soaking" };
const awaiting = (p: Partial<NotifiedPromotion> = {}) =>
  promotion({ state: "waiting", gates: [soaking, gate("waiting", "awaiting_approvals")], ...p });
const awaitingNeeding = (more: number, p: Partial<NotifiedPromotion> = {}, groups = ["release"]) =>
  awaiting({ gates: [soaking, gate("waiting", "awaiting_approvals", { needs: { more, groups } })], ...p });
const approved = (p: Partial<NotifiedPromotion> = {}) =>
  promotion({ state: "running", gates: [gate("passed", "approved")], ...p });

describe("notification events of a promotion change (before → after)", () => {
  it.each<[string, NotifiedPromotion | undefined, NotifiedPromotion, string[]]>([
    ["a new promotion", undefined, promotion(), []],
    ["a new break-glass promotion", undefined, promotion({ breakGlass: glass }), ["break_glass"]],
    [
      "a later change of a break-glass promotion",
      promotion({ breakGlass: glass }),
      promotion({ state: "running", breakGlass: glass }),
      [],
    ],
    ["pending → waiting for approvals", promotion(), awaiting(), ["awaiting_approval"]],
    [
      "re-evaluated while still waiting for approvals",
      awaiting({ version: 2 }),
      awaiting({ version: 3 }),
      [],
    ],
    [
      "re-evaluated after a vote: fewer people still needed",
      awaitingNeeding(2),
      awaitingNeeding(1, { version: 3 }),
      [],
    ],
    [
      "re-evaluated: as many people still needed, from other groups",
      awaitingNeeding(1),
      awaitingNeeding(1, { version: 3 }, ["security"]),
      [],
    ],
    [
      "approvals stopped counting (expired, policy changed): more people needed again",
      awaitingNeeding(1),
      awaitingNeeding(2, { version: 3 }),
      ["awaiting_approval"],
    ],
    [
      "a gate stored without needs, then with them, is the same wait",
      awaiting(),
      awaitingNeeding(2, { version: 3 }),
      [],
    ],
    [
      "waiting for approvals → waiting for a soak only",
      awaiting(),
      promotion({ state: "waiting", gates: [soaking] }),
      [],
    ],
    [
      "approvals voided: passed → waiting again",
      approved({ state: "waiting" }),
      awaiting(),
      ["awaiting_approval"],
    ],
    [
      "a soak wait is not an approvals wait",
      promotion(),
      promotion({ state: "waiting", gates: [soaking] }),
      [],
    ],
    [
      "approvals gate waiting for another reason",
      promotion(),
      promotion({ state: "waiting", gates: [gate("waiting", "policy_changed")] }),
      [],
    ],
    ["waiting for approvals → approved", awaiting(), approved(), ["approved"]],
    ["approved, re-read", approved(), approved({ version: 9 }), []],
    [
      "approvals skipped (not configured)",
      promotion(),
      promotion({ state: "running", gates: [gate("skipped", "not_configured")] }),
      [],
    ],
    [
      "approved → promoted in one change",
      awaiting(),
      approved({ state: "promoted" }),
      ["approved", "promoted"],
    ],
    ["running → promoted", promotion({ state: "running" }), promotion({ state: "promoted" }), ["promoted"]],
    ["promoted, re-read", promotion({ state: "promoted" }), promotion({ state: "promoted", version: 7 }), []],
    ["waiting → rejected", awaiting(), awaiting({ state: "rejected" }), ["rejected"]],
    ["pending → failed (a gate)", promotion(), promotion({ state: "failed" }), ["failed"]],
    [
      "running → failed (a step)",
      promotion({ state: "running" }),
      promotion({ state: "failed" }),
      ["failed"],
    ],
    ["waiting → expired counts as failed", awaiting(), awaiting({ state: "expired" }), ["failed"]],
    ["waiting → cancelled is not told", awaiting(), awaiting({ state: "cancelled" }), []],
    ["waiting → superseded is not told", awaiting(), awaiting({ state: "superseded" }), []],
  ])("%s", (_name, before, after, expected) => {
    expect(notificationEvents(after, before)).toEqual(expected);
  });
});

describe("payloads", () => {
  const url = "https://ferry.example.com/";

  it("standard: type, the change's timestamp, and data with a link; needs only when awaiting approval", () => {
    const waiting = awaiting({
      gates: [
        gate("waiting", "awaiting_approvals", {
          message: "production needs 2 more approvals (from release-managers)",
          needs: { more: 2, groups: ["release-managers"] },
        }),
      ],
    });
    expect(standardPayload("awaiting_approval", waiting, url)).toEqual({
      type: "ferry.promotion.awaiting_approval",
      timestamp: "2026-01-01T00:05:00.000Z",
      data: {
        id: waiting.id,
        app: "web",
        environment: "production",
        from: "staging",
        digest: DIGEST,
        state: "waiting",
        rollback: false,
        url: `https://ferry.example.com/v1/promotions/${waiting.id}`,
        needs: { more: 2, groups: ["release-managers"] },
      },
    });
    // Only the gate's `more` and `groups` are told, whatever else a stored record carries.
    const extra = awaiting({
      gates: [
        gate("waiting", "awaiting_approvals", { needs: { more: 1, groups: ["security"], x: 1 } as never }),
      ],
    });
    expect(standardPayload("awaiting_approval", extra, url).data.needs).toEqual({
      more: 1,
      groups: ["security"],
    });
    // A gate without a structured `needs` tells none (never its message in another shape).
    expect(standardPayload("awaiting_approval", awaiting(), url).data).not.toHaveProperty("needs");
    expect(standardPayload("promoted", waiting, url).data).not.toHaveProperty("needs");
  });

  it("standard: failed carries the result; nothing of the requester's identity or the verification", () => {
    const failed = promotion({
      state: "failed",
      result: { reason: "not_promoted_upstream", message: "not in staging" },
      verification: { policyHash: "1".repeat(64) },
    });
    const body = standardPayload("failed", failed, url);
    expect(body.data.result).toEqual({ reason: "not_promoted_upstream", message: "not in staging" });
    expect(JSON.stringify(body)).not.toContain("repo:acme");
    expect(JSON.stringify(body)).not.toContain("policyHash");
  });

  it("standard: rejected carries who rejected it and why, field by field; failed never a `by`", () => {
    const by = { issuer: "okta", subject: "00u1", name: "Ada Lovelace" };
    const result = { reason: "rejected", message: "rejected by Ada Lovelace (okta): no", by, comment: "no" };
    const rejected = promotion({ state: "rejected", result: { ...result, extra: "kept out" } as never });
    expect(standardPayload("rejected", rejected, url).data.result).toEqual(result);
    const failed = promotion({ state: "failed", result: { reason: "expired", message: "waited", by } });
    expect(standardPayload("failed", failed, url).data.result).toEqual({
      reason: "expired",
      message: "waited",
    });
    expect(standardPayload("promoted", rejected, url).data).not.toHaveProperty("result");
  });

  it("standard: break_glass carries the justification and when the review is due", () => {
    const p = promotion({ breakGlass: glass });
    expect(standardPayload("break_glass", p, url).data.breakGlass).toEqual({
      justification: "outage",
      reviewBy: "2026-01-02T00:00:00.000Z",
    });
    expect(standardPayload("promoted", p, url).data).not.toHaveProperty("breakGlass");
  });

  it("slack: one readable line with a link", () => {
    expect(slackPayload("promoted", promotion({ state: "promoted" }), url)).toEqual({
      text: `Ferry: web sha256:abababababab… was promoted into production (<https://ferry.example.com/v1/promotions/${promotion().id}|promotion ${promotion().id}>)`,
    });
    const failed = promotion({ state: "failed", result: { reason: "<b>", message: "" } });
    expect(slackPayload("failed", failed, url).text).toContain("failed to enter production: &lt;b&gt;");
  });

  it("a standard body signed for an attempt verifies with standardwebhooks", () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const body = renderBody("standard", "promoted", promotion({ state: "promoted" }), url);
    const headers = standardHeaders(new Webhook(secret), "msg_1", new Date(), body);
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: "ferry.promotion.promoted" });
    const other = `whsec_${Buffer.alloc(32, 8).toString("base64")}`;
    expect(() => new Webhook(other).verify(body, headers)).toThrow();
  });
});
