import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { FerryError } from "../../src/common/errors.ts";
import type { HumanPrincipal } from "../../src/identity/principal.ts";
import { BreakGlassReviews, reviewerEligibility } from "../../src/promotion/approvals/reviews.ts";
import type { CompiledApprovalRules } from "../../src/promotion/approvals/rules.ts";
import type { PromotionRecord } from "../../src/promotion/record.ts";
import { PromotionStore } from "../../src/promotion/store.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";

const H = 3_600_000;

/** Production's approvers, as the approvals compile them: release-managers, no link claims needed. */
const RULES: CompiledApprovalRules = {
  environment: "production",
  count: 1,
  groups: ["release-managers"],
  requireEach: [],
  expiresAfter: 24 * H,
  requireLinkedIdentity: false,
  policyHash: "0".repeat(64),
  issuerLinks: new Map(),
};

function person(subject: string, groups: string[] = ["release-managers"]): HumanPrincipal {
  return {
    kind: "human",
    issuer: { name: "sso", url: "https://sso.example.com", platform: "generic" },
    subject,
    claims: {},
    tokenSha256: "0".repeat(64),
    groups,
    name: `Person ${subject}`,
  };
}

/** The code and reason a call failed with; throws when it succeeded. */
async function refusal(call: Promise<unknown>): Promise<[string, unknown]> {
  try {
    await call;
  } catch (err) {
    if (err instanceof FerryError) return [err.code, err.extra?.reason];
    throw err;
  }
  throw new Error("the call was accepted");
}

let seq = 0;
function record(now: number, over: Partial<PromotionRecord> = {}): PromotionRecord {
  seq++;
  return {
    id: `0190a000-0000-7000-8000-${String(seq).padStart(12, "0")}`,
    app: "web",
    environment: "production",
    digest: `sha256:${String(seq).padStart(64, "0")}`,
    from: "staging",
    sourceRepository: "127.0.0.1:5000/staging/web",
    targetRepository: "127.0.0.1:5000/prod/web",
    // Unfinished: the store inserts only those (a review takes any state).
    state: "waiting",
    version: 1,
    rollback: false,
    requestedBy: { issuer: "sso", subject: "requester", kind: "human" },
    requestHash: "1".repeat(64),
    createdAt: now,
    updatedAt: now,
    nextCheckAt: null,
    gates: [],
    steps: [],
    breakGlass: { justification: "INC-1: checkout is down", at: now, reviewBy: now + 24 * H },
    ...over,
  };
}

describe.each(storeEngines("break_glass_reviews"))("break-glass reviews on %s", (_engine, freshSpec) => {
  let clock: FakeClock;
  let store: Store;
  let promotions: PromotionStore;
  let reviews: BreakGlassReviews;

  beforeEach(async () => {
    clock = new FakeClock(Date.UTC(2026, 2, 1, 9));
    store = await openStore(await freshSpec(), { clock });
    promotions = new PromotionStore(store);
    reviews = new BreakGlassReviews({
      store: promotions,
      database: store,
      clock,
      eligibility: reviewerEligibility(new Map([["production", RULES]])),
    });
  });
  afterEach(async () => {
    await store?.close();
  });

  const insert = async (r: PromotionRecord) => (await promotions.insert(r, undefined)).promotion;

  it("stores and reads back the break-glass mark, and an ordinary promotion has none", async () => {
    const glass = await insert(record(clock.now()));
    const { breakGlass: _, ...rest } = record(clock.now());
    const plain = await insert(rest);
    expect((await promotions.get(glass.id))?.breakGlass).toEqual({
      justification: "INC-1: checkout is down",
      at: clock.now(),
      reviewBy: clock.now() + 24 * H,
    });
    expect((await promotions.get(plain.id))?.breakGlass).toBeUndefined();
    const ids = async (filter: { breakGlass?: boolean; reviewed?: boolean }) =>
      (await promotions.list({ limit: 10, ...filter })).items.map((p) => p.id);
    expect(await ids({ breakGlass: true })).toEqual([glass.id]);
    expect(await ids({ breakGlass: false })).toEqual([plain.id]);
    expect(await ids({ reviewed: false })).toEqual([glass.id]);
    expect(await ids({ reviewed: true })).toEqual([]);
  });

  it("marks a review after reviewBy late, and counts the overdue ones until then", async () => {
    const early = await insert(record(clock.now()));
    await clock.advance(2 * H);
    const later = await insert(record(clock.now()));
    expect(await promotions.unreviewedBreakGlass(clock.now())).toEqual({ open: 2, overdue: 0 });

    await clock.advance(23 * H); // early is 25 h old (overdue), later 23 h
    expect(await promotions.unreviewedBreakGlass(clock.now())).toEqual({ open: 2, overdue: 1 });

    const late = await reviews.review(person("rm-1"), early, "looked at it, late");
    expect(late).toMatchObject({ created: true, review: { late: true } });
    const onTime = await reviews.review(person("rm-1"), later, "looked at it");
    expect(onTime.review.late).toBe(false);
    expect((await promotions.get(early.id))?.review).toMatchObject({ late: true, count: 1 });
    expect(await promotions.unreviewedBreakGlass(clock.now())).toEqual({ open: 0, overdue: 0 });
  });

  it("records one review per person, even when the same person sends two at once", async () => {
    const p = await insert(record(clock.now()));
    const [a, b] = await Promise.all([
      reviews.review(person("rm-1"), p, "first"),
      reviews.review(person("rm-1"), p, "second"),
    ]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.review.id).toBe(b.review.id);
    const after = await promotions.get(p.id);
    expect(after?.review?.count).toBe(1);
    expect(after?.version).toBe(2);

    const other = await reviews.review(person("rm-2"), after!, "also fine");
    expect(other.created).toBe(true);
    expect((await promotions.get(p.id))?.review).toMatchObject({
      by: { issuer: "sso", subject: "rm-1", name: "Person rm-1" },
      count: 2,
    });
  });

  it("retries its compare-and-swap when the promotion changed meanwhile", async () => {
    const p = await insert(record(clock.now(), { state: "running" }));
    // The worker moved it on after the reviewer read it.
    await promotions.update(p, { state: "promoted" }, clock.now());
    const { created } = await reviews.review(person("rm-1"), p, "fine");
    expect(created).toBe(true);
    expect(await promotions.get(p.id)).toMatchObject({ state: "promoted", version: 3, review: { count: 1 } });
  });

  it("refuses what is not a break-glass promotion, and who may not review, writing nothing", async () => {
    const { breakGlass: _, ...plain } = record(clock.now());
    const ordinary = await insert(plain);
    expect(await refusal(reviews.review(person("rm-1"), ordinary, "x"))).toEqual([
      "conflict",
      "not_break_glass",
    ]);
    const p = await insert(record(clock.now()));
    const refused = (who: HumanPrincipal, comment = "x") => refusal(reviews.review(who, p, comment));
    expect(await refused(person("requester"))).toEqual(["forbidden", "requester_cannot_approve"]);
    expect(await refused(person("dev", ["engineering"]))).toEqual(["forbidden", "not_in_group"]);
    expect(await refused(person("rm-1"), "  ")).toEqual(["validation_failed", "review_comment_missing"]);
    expect((await promotions.get(p.id))?.review).toBeUndefined();
    const noRules = new BreakGlassReviews({
      store: promotions,
      database: store,
      clock,
      eligibility: reviewerEligibility(new Map()),
    });
    expect(await refusal(noRules.review(person("rm-1"), p, "x"))).toEqual([
      "forbidden",
      "no_approvals_configured",
    ]);
  });
});
