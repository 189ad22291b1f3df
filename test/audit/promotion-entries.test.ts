import { describe, expect, it } from "vitest";
import {
  AUDIT_TEXT_MAX,
  deliveryEntry,
  issuerUrlsOf,
  type PendingItem,
  promotionAuditItems,
} from "../../src/audit/promotion-entries.ts";
import type { AuditInput } from "../../src/audit/types.ts";
import type { PromotionRecord } from "../../src/promotion/record.ts";
import { ISSUERS, next, requested } from "./promotion-fixtures.ts";

// The pure derivation of audit entries from one promotion change (before → after).

const entries = (items: PendingItem[]): AuditInput[] =>
  items.flatMap((i) => (i.kind === "entry" ? [i.entry] : []));
const kinds = (items: PendingItem[]) =>
  items.map((i) => (i.kind === "sync" ? "sync" : `${i.entry.type}:${i.entry.outcome}`));
const steps = (p: PromotionRecord, name: string, change: Record<string, unknown>) =>
  p.steps.map((s) => (s.name === name ? { ...s, ...change } : s));

describe("promotionAuditItems", () => {
  it("records a request with who, app, env, digest, rollback and breakGlass; break-glass with its justification", () => {
    const p = requested("p1", {
      rollback: true,
      reason: "back to the last good one",
      breakGlass: { justification: "INC-1: checkout down", at: 1_000, reviewBy: 5_000 },
      requestedBy: { issuer: "sso", subject: "ada", kind: "human" },
    });
    const items = promotionAuditItems(p, undefined, ISSUERS);
    expect(kinds(items)).toEqual(["promotion_requested:requested", "break_glass:requested"]);
    const [request, breakGlass] = entries(items);
    expect(request).toMatchObject({
      actor: { issuer: "https://sso.example.com", subject: "ada" },
      subject: "p1",
      data: {
        app: "web",
        environment: "production",
        digest: p.digest,
        rollback: true,
        breakGlass: true,
        reason: "back to the last good one",
      },
    });
    expect(breakGlass).toMatchObject({
      actor: { issuer: "https://sso.example.com", subject: "ada" },
      data: { justification: "INC-1: checkout down", reviewBy: 5_000 },
    });
  });

  it("records a gate only when its status or reason changed, not on a re-evaluation that changed nothing", () => {
    const p = requested("p2");
    const soaking = {
      name: "soak" as const,
      status: "waiting" as const,
      reason: "soaking",
      message: "1h left",
    };
    const w = next(p, { state: "waiting", gates: [soaking] });
    expect(kinds(promotionAuditItems(w, p, ISSUERS))).toEqual([
      "gate_result:waiting",
      "promotion_state:waiting",
      "sync",
    ]);
    // Same status and reason, another message and time: nothing but the sync (votes may have come).
    const again = next(w, { gates: [{ ...soaking, message: "30m left" }], nextCheckAt: 9_000 });
    expect(kinds(promotionAuditItems(again, w, ISSUERS))).toEqual(["sync"]);
    const passed = next(again, {
      state: "running",
      gates: [{ name: "soak", status: "passed", reason: "soaked" }],
    });
    const items = promotionAuditItems(passed, again, ISSUERS);
    expect(kinds(items)).toEqual(["gate_result:passed", "promotion_state:running", "sync"]);
    expect(entries(items)[0]).toMatchObject({
      reason: "soaked",
      data: { gate: "soak", was: { status: "waiting", reason: "soaking" } },
    });
    expect(entries(items)[1]).toMatchObject({
      actor: "ferry",
      reason: "gates_passed",
      data: { from: "waiting", to: "running" },
    });
  });

  it("asks for no vote sync where no one can vote: approvals skipped, or the promotion running", () => {
    const p = requested("p3");
    const skipped = next(p, {
      state: "running",
      gates: [{ name: "approvals", status: "skipped", reason: "not_configured" }],
    });
    expect(kinds(promotionAuditItems(skipped, p, ISSUERS))).toEqual([
      "gate_result:skipped",
      "promotion_state:running",
    ]);
    const stepped = next(skipped, { steps: steps(skipped, "copy", { status: "done" }) });
    expect(promotionAuditItems(stepped, skipped, ISSUERS)).toEqual([]);
  });

  it("records a rejection by its approver, with the comment, besides the state change", () => {
    const p = next(requested("p4"), { state: "waiting" });
    const rejected = next(p, {
      state: "rejected",
      nextCheckAt: null,
      result: {
        reason: "rejected",
        message: "rejected by Bob",
        by: { issuer: "sso", subject: "bob", name: "Bob" },
        comment: "not today",
      },
    });
    const items = promotionAuditItems(rejected, p, ISSUERS);
    expect(kinds(items)).toEqual(["promotion_state:rejected", "rejection:rejected", "sync"]);
    expect(entries(items)[1]).toMatchObject({
      actor: { issuer: "https://sso.example.com", subject: "bob", name: "Bob" },
      data: { comment: "not today", digest: p.digest },
    });
  });

  it("records the GitOps commit and the verification summary when their steps become done, once", () => {
    const p = next(requested("p5"), {
      state: "running",
      gates: [{ name: "approvals", status: "skipped", reason: "not_configured" }],
    });
    const pushed = next(p, {
      steps: steps(p, "gitops", {
        status: "done",
        data: {
          commit: "f".repeat(40),
          repo: "http://git.test/deploy.git",
          branch: "main",
          path: "prod/web.yaml",
        },
      }),
    });
    const gitops = promotionAuditItems(pushed, p, ISSUERS);
    expect(entries(gitops)).toEqual([
      expect.objectContaining({
        type: "gitops_commit",
        outcome: "pushed",
        data: expect.objectContaining({
          repo: "http://git.test/deploy.git",
          branch: "main",
          commit: "f".repeat(40),
          path: "prod/web.yaml",
        }),
      }),
    ]);
    const summarised = next(pushed, {
      steps: steps(pushed, "evidence", {
        status: "done",
        data: {
          summary: {
            digest: `sha256:${"e".repeat(64)}`,
            predicateType: "https://slsa.dev/verification_summary/v1",
            keyId: "k",
          },
        },
      }),
    });
    const evidence = promotionAuditItems(summarised, pushed, ISSUERS);
    expect(entries(evidence)).toEqual([
      expect.objectContaining({
        type: "verification_summary",
        outcome: "attached",
        data: expect.objectContaining({ summary: `sha256:${"e".repeat(64)}` }),
      }),
    ]);
    // A later change with both steps still done records neither again.
    const promoted = next(summarised, { state: "promoted", nextCheckAt: null });
    expect(kinds(promotionAuditItems(promoted, summarised, ISSUERS))).toEqual(["promotion_state:promoted"]);
    // A gitops step done without a commit (no GitOps target) is no commit.
    const noCommit = next(p, { steps: steps(p, "gitops", { status: "done", data: { skipped: true } }) });
    expect(promotionAuditItems(noCommit, p, ISSUERS)).toEqual([]);
  });

  it("asks for a review sync when the review count moves, and bounds long texts", () => {
    const long = "x".repeat(AUDIT_TEXT_MAX + 50);
    const p = requested("p6", { state: "promoted", breakGlass: { justification: long, at: 1, reviewBy: 2 } });
    expect(
      (entries(promotionAuditItems(p, undefined, ISSUERS))[1]!.data as { justification: string })
        .justification,
    ).toHaveLength(AUDIT_TEXT_MAX);
    const reviewed = next(p, {
      review: { by: { issuer: "sso", subject: "rae" }, at: 3, late: true, comment: "ok", count: 1 },
    });
    expect(kinds(promotionAuditItems(reviewed, p, ISSUERS))).toEqual(["sync"]);
  });

  it("maps issuer names to URLs, Ferry's own to the public URL, and leaves an unknown name as stored", () => {
    const urls = issuerUrlsOf({
      issuers: [{ name: "github", url: "https://gh.test" }],
      server: { publicUrl: "https://ferry.test" },
    });
    expect(urls.get("github")).toBe("https://gh.test");
    expect(urls.get("ferry")).toBe("https://ferry.test");
    const p = requested("p7", { requestedBy: { issuer: "gone", subject: "x", kind: "pipeline" } });
    expect(entries(promotionAuditItems(p, undefined, urls))[0]!.actor).toEqual({
      issuer: "gone",
      subject: "x",
    });
  });
});

describe("deliveryEntry", () => {
  it("names the receiver, event, outcome and attempt; never a URL", () => {
    const entry = deliveryEntry(
      { id: "msg_1", promotionId: "p1", receiver: "ops", event: "promoted" },
      { state: "dead", reason: "http_410", attempt: 1, status: 410 },
    );
    expect(entry).toEqual({
      type: "notification_delivery",
      actor: "ferry",
      subject: "p1",
      outcome: "dead",
      reason: "http_410",
      data: { delivery: "msg_1", receiver: "ops", event: "promoted", attempt: 1, status: 410 },
    });
  });
});
