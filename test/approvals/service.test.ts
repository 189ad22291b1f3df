import type { Kysely } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { FerryError } from "../../src/common/errors.ts";
import { createLogger } from "../../src/common/logger.ts";
import type { HumanPrincipal } from "../../src/identity/principal.ts";
import type { CompiledApprovalRules } from "../../src/promotion/approvals/rules.ts";
import { ApprovalService } from "../../src/promotion/approvals/service.ts";
import { ApprovalStore } from "../../src/promotion/approvals/store.ts";
import type { PromotionRecord } from "../../src/promotion/record.ts";
import { type PromotionChanges, PromotionStore } from "../../src/promotion/store.ts";
import type { HeldLease } from "../../src/store/leases.ts";
import type { Database } from "../../src/store/schema.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";

/**
 * The approval service against a real store, with a promotion store that lets the "worker" change
 * the promotion between the service's read and its compare-and-swap: the race a reject must survive.
 */

const RULES: CompiledApprovalRules = {
  environment: "production",
  count: 2,
  groups: ["release"],
  requireEach: [],
  expiresAfter: 3_600_000,
  requireLinkedIdentity: true,
  policyHash: "a".repeat(64),
  issuerLinks: new Map([["okta", { github: "github_id" }]]),
};

const ada: HumanPrincipal = {
  kind: "human",
  issuer: { name: "okta", url: "https://okta.example", platform: "generic" },
  subject: "ada",
  claims: { sub: "ada", github_id: "101" },
  tokenSha256: "0".repeat(64),
  groups: ["release"],
  name: "Ada",
};

/** Before the first compare-and-swap that rejects, applies `race` as the worker would. */
class RacingStore extends PromotionStore {
  race: PromotionChanges | undefined;

  override async update(
    current: PromotionRecord,
    changes: PromotionChanges,
    now: number,
    lease?: HeldLease,
    db?: Kysely<Database>,
  ): Promise<PromotionRecord | undefined> {
    if (this.race !== undefined && changes.state === "rejected") {
      const race = this.race;
      this.race = undefined;
      // Inside the vote's transaction when there is one (a second connection would wait on it):
      // the CAS after it sees the worker's change either way.
      await super.update(current, race, now, undefined, db);
    }
    return super.update(current, changes, now, lease, db);
  }
}

let store: Store;
let promotions: RacingStore;
let votes: ApprovalStore;
let service: ApprovalService;
const clock = new FakeClock(Date.UTC(2026, 11, 1));

function record(): PromotionRecord {
  const now = clock.now();
  return {
    id: `p-${Math.random().toString(36).slice(2)}`,
    app: "web",
    environment: "production",
    digest: `sha256:${"b".repeat(64)}`,
    from: null,
    sourceRepository: "r/web",
    targetRepository: "r/web",
    state: "waiting",
    version: 1,
    rollback: false,
    requestedBy: {
      issuer: "github",
      subject: "repo:acme/web",
      kind: "pipeline",
      platform: "github",
      actor: "octocat",
      actorId: "12",
    },
    requestHash: "c".repeat(64),
    createdAt: now,
    updatedAt: now,
    nextCheckAt: now + 60_000,
    gates: [{ name: "approvals", status: "waiting", reason: "awaiting_approvals" }],
    steps: [],
  };
}

describe.each(storeEngines("approvals"))("approvals on %s", (_engine, freshSpec) => {
  beforeEach(async () => {
    store = await openStore(await freshSpec());
    promotions = new RacingStore(store);
    votes = new ApprovalStore(store);
    service = new ApprovalService({
      promotions,
      votes,
      policies: { approvals: new Map([["production", RULES]]) },
      read: async (_principal, id) => {
        const p = await promotions.get(id);
        if (p === undefined) throw new FerryError("not_found", `no promotion ${id}`);
        return p;
      },
      clock,
      wake: () => undefined,
      notify: () => undefined,
      finished: () => undefined,
      logger: createLogger("silent"),
    });
  });

  afterEach(async () => {
    await store.close();
  });

  describe("a reject racing the worker", () => {
    it("is not lost when the worker changed the promotion first: re-read, and the CAS again", async () => {
      const p = (await promotions.insert(record(), undefined)).promotion;
      promotions.race = { nextCheckAt: clock.now() + 1 };
      const { promotion } = await service.vote(ada, p.id, { decision: "reject", comment: "not today" });
      expect(promotion.state).toBe("rejected");
      const stored = await promotions.get(p.id);
      expect(stored).toMatchObject({
        state: "rejected",
        result: { reason: "rejected", by: { subject: "ada" } },
      });
      expect(stored!.version).toBe(3);
      expect((await votes.forPromotion(p.id)).map((v) => v.decision)).toEqual(["reject"]);
    });

    it("is refused (and not stored) when the worker started the promotion first", async () => {
      const p = (await promotions.insert(record(), undefined)).promotion;
      promotions.race = { state: "running" };
      const err = await service.vote(ada, p.id, { decision: "reject", comment: "too late" }).catch((e) => e);
      expect(err).toBeInstanceOf(FerryError);
      expect(err.extra).toMatchObject({ reason: "not_awaiting_approval" });
      expect((await promotions.get(p.id))!.state).toBe("running");
      expect(await votes.forPromotion(p.id)).toEqual([]);
    });
  });

  describe("votes", () => {
    it("make a waiting promotion due at once, so the woken worker decides its gate", async () => {
      const p = (await promotions.insert(record(), undefined)).promotion;
      const { promotion, vote } = await service.vote(ada, p.id, { decision: "approve" });
      expect(promotion.nextCheckAt).toBe(clock.now());
      expect(vote).toMatchObject({ counts: true });
    });

    it("keep one row per person: approving again is idempotent, approve then reject replaces it", async () => {
      const p = (await promotions.insert(record(), undefined)).promotion;
      await service.vote(ada, p.id, { decision: "approve", comment: "first" });
      await clock.advance(1000);
      await service.vote(ada, p.id, { decision: "approve", comment: "second" });
      let rows = await votes.forPromotion(p.id);
      expect(rows.map((v) => [v.decision, v.comment, v.decidedAt])).toEqual([
        ["approve", "first", clock.now() - 1000],
      ]);
      await service.vote(ada, p.id, { decision: "reject", comment: "changed my mind" });
      rows = await votes.forPromotion(p.id);
      expect(rows.map((v) => [v.decision, v.comment])).toEqual([["reject", "changed my mind"]]);
    });

    it("renew an approval that expired", async () => {
      const p = (await promotions.insert(record(), undefined)).promotion;
      await service.vote(ada, p.id, { decision: "approve" });
      await clock.advance(RULES.expiresAfter);
      const { vote } = await service.vote(ada, p.id, { decision: "approve" });
      expect(vote).toMatchObject({ counts: true });
      expect(vote.vote.decidedAt).toBe(clock.now());
    });
  });
});
