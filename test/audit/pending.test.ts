import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/log.ts";
import { auditPromotionWrites, pendingSync } from "../../src/audit/pending.ts";
import type { AuditEntry } from "../../src/audit/types.ts";
import { verifyChain } from "../../src/audit/verify.ts";
import { newRecordId } from "../../src/common/ids.ts";
import { PromotionStore } from "../../src/promotion/store.ts";
import { openStore, type Store, type StoreSpec } from "../../src/store/store.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { storeEngines } from "../support/store.ts";
import { ISSUERS, requested } from "./promotion-fixtures.ts";

// Promotion decisions reach the chain through `audit_pending`, written in each change's own
// transaction: a change commits with its entries or not at all, and rows a dead process left are
// chained by the next appender. On both engines.

const WORKER = new URL("./pending-worker.ts", import.meta.url).pathname;
const engines = storeEngines("audit_pending");

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function openFresh(spec: StoreSpec): Promise<Store> {
  const store = await openStore(spec);
  open.push(store);
  return store;
}

async function pendingCount(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom("audit_pending")
    .select((eb) => eb.fn.countAll().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function allEntries(log: AuditLog): Promise<AuditEntry[]> {
  return log.read(0, 10_000);
}

/** Inserts an approve vote as the approvals service stores it (its own table and transaction). */
async function vote(store: Store, promotion: string, subject: string, at: number, decision = "approve") {
  const id = newRecordId();
  await store.db
    .insertInto("approvals")
    .values({
      id,
      promotion_id: promotion,
      app: "web",
      digest: `sha256:${"ab".repeat(32)}`,
      environment: "production",
      issuer: "sso",
      subject,
      name: `${subject} name`,
      decision,
      comment: decision === "approve" ? "looks good" : "no",
      groups: JSON.stringify(["release-managers"]),
      links: "{}",
      policy_hash: "d".repeat(64),
      created_at: at,
      updated_at: at,
    })
    .execute();
  return id;
}

describe.each(engines)("audit_pending on %s", (_engine, freshSpec) => {
  it("writes a change's entries in its transaction: a rolled-back change leaves none", async () => {
    const store = await openFresh(await freshSpec());
    const promotions = new PromotionStore(store);
    let chained = 0;
    auditPromotionWrites(promotions, ISSUERS, () => chained++);
    // A later hook that throws rolls the whole change back, the audit rows with it.
    let fail = false;
    promotions.onWrite(async () => {
      if (fail) throw new Error("boom");
    });
    const { promotion } = await promotions.insert(requested("p-rollback"), undefined);
    const rows = await pendingCount(store);
    expect(rows).toBeGreaterThan(0);
    expect(chained).toBe(1);
    fail = true;
    await expect(
      promotions.update(promotion, { state: "cancelled", nextCheckAt: null }, 2_000),
    ).rejects.toThrow("boom");
    expect(await pendingCount(store)).toBe(rows);
    expect((await promotions.get("p-rollback"))?.state).toBe("pending");
    expect(chained).toBe(1);
  });

  it("chains pending rows in the order of their changes, deleting them in the same transaction", async () => {
    const store = await openFresh(await freshSpec());
    const promotions = new PromotionStore(store);
    const log = new AuditLog({ store, sync: pendingSync(ISSUERS) });
    open.push(log);
    auditPromotionWrites(promotions, ISSUERS, () => void log.chainPending());
    const a = (await promotions.insert(requested("p-a"), undefined)).promotion;
    const b = (await promotions.insert(requested("p-b", { app: "api" }), undefined)).promotion;
    const a2 = await promotions.update(
      a,
      { state: "waiting", gates: [{ name: "soak", status: "waiting", reason: "soaking" }] },
      2_000,
    );
    await promotions.update(
      a2!,
      { state: "running", gates: [{ name: "soak", status: "passed", reason: "soaked" }] },
      3_000,
    );
    await promotions.update(
      b,
      { state: "failed", nextCheckAt: null, result: { reason: "source_missing", message: "gone" } },
      2_500,
    );
    await log.flush();
    expect(await pendingCount(store)).toBe(0);
    const entries = await allEntries(log);
    expect(verifyChain(entries)).toMatchObject({ ok: true });
    const of = (id: string) => entries.filter((e) => e.subject === id).map((e) => `${e.type}:${e.outcome}`);
    expect(of("p-a")).toEqual([
      "promotion_requested:requested",
      "gate_result:waiting",
      "promotion_state:waiting",
      "gate_result:passed",
      "promotion_state:running",
    ]);
    expect(of("p-b")).toEqual(["promotion_requested:requested", "promotion_state:failed"]);
  });

  it("chains votes and reviews from their own tables once each, however often they are synced", async () => {
    const store = await openFresh(await freshSpec());
    const promotions = new PromotionStore(store);
    const log = new AuditLog({ store, sync: pendingSync(ISSUERS) });
    open.push(log);
    auditPromotionWrites(promotions, ISSUERS, () => void log.chainPending());
    let p = (await promotions.insert(requested("p-votes"), undefined)).promotion;
    const waitGate = { name: "approvals" as const, status: "waiting" as const, reason: "awaiting_approvals" };
    p = (await promotions.update(p, { state: "waiting", gates: [waitGate] }, 2_000))!;
    const ada = await vote(store, p.id, "ada", 2_100);
    await vote(store, p.id, "bob", 2_200, "reject"); // not an approval: a reject's entry comes from its change
    // Two changes after the vote, each asking for a sync: the vote is chained once.
    p = (await promotions.update(p, { nextCheckAt: 2_300 }, 2_300))!;
    p = (await promotions.update(p, { nextCheckAt: 2_400 }, 2_400))!;
    await log.flush();
    // A vote replaced by the same person (new decision time) is a new approval.
    await store.db
      .updateTable("approvals")
      .set({ updated_at: 2_500, comment: "still good" })
      .where("id", "=", ada)
      .execute();
    await promotions.update(p, { nextCheckAt: 2_600 }, 2_600);
    await log.flush();
    const approvals = (await allEntries(log)).filter((e) => e.type === "approval");
    expect(approvals.map((e) => [e.data.vote, e.data.decidedAt, e.data.comment])).toEqual([
      [ada, 2_100, "looks good"],
      [ada, 2_500, "still good"],
    ]);
    expect(approvals[0]!.actor).toEqual({
      issuer: "https://sso.example.com",
      subject: "ada",
      name: "ada name",
    });
    expect(approvals[0]!.subject).toBe(p.id);
  });

  it("two appenders draining the same pending rows chain each once", async () => {
    const spec = await freshSpec();
    const store = await openFresh(spec);
    const other = await openFresh(spec);
    const promotions = new PromotionStore(store);
    auditPromotionWrites(promotions, ISSUERS, () => undefined);
    for (let i = 0; i < 40; i++)
      await promotions.insert(requested(`p-many-${i}`, { app: `app-${i}` }), undefined);
    const pending = await pendingCount(store);
    expect(pending).toBe(40);
    const one = new AuditLog({ store, maxBatch: 7, sync: pendingSync(ISSUERS) });
    const two = new AuditLog({ store: other, maxBatch: 5, sync: pendingSync(ISSUERS) });
    open.push(one, two);
    await Promise.all([one.chainPending(), two.chainPending()]);
    const entries = await allEntries(one);
    expect(verifyChain(entries)).toMatchObject({ ok: true, size: 40 });
    expect(new Set(entries.map((e) => e.subject)).size).toBe(40);
    expect(await pendingCount(store)).toBe(0);
  });

  it("chains, at the next start, the pending rows of a process killed before its appender ran", async () => {
    const spec = await freshSpec();
    const id = newRecordId();
    const child = spawn(process.execPath, [WORKER, JSON.stringify(spec), id], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    const [code, signal] = (await once(child, "close")) as [number | null, string | null];
    expect(out, err).toBe("written\n");
    expect(signal).toBe("SIGKILL");
    expect(code).toBeNull();
    const store = await openFresh(spec);
    // requested; gate, waiting and a sync (votes may come while it waits); cancelled and a sync.
    expect(await pendingCount(store)).toBe(6);
    await store.close();
    open.pop();

    const ferry: TestFerry = await startTestFerry({ store: spec });
    open.push(ferry);
    await ferry.audit.flush();
    const entries = await ferry.audit.entriesFor(id);
    expect(entries.map((e) => `${e.type}:${e.outcome}`)).toEqual([
      "promotion_requested:requested",
      "gate_result:waiting",
      "promotion_state:waiting",
      "promotion_state:cancelled",
    ]);
    expect(entries[0]!.actor).toEqual({
      issuer: "https://token.actions.githubusercontent.com",
      subject: "repo:acme/web:ref:refs/heads/main",
    });
    expect(verifyChain(await allEntries(ferry.audit))).toMatchObject({ ok: true });
    expect(await pendingCount(ferry.store)).toBe(0);
  });
});
