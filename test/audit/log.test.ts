import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { verifyCheckpoint } from "../../src/audit/checkpoint.ts";
import { entryHash } from "../../src/audit/hash.ts";
import { AuditLog } from "../../src/audit/log.ts";
import type { AuditInput } from "../../src/audit/types.ts";
import { verifyChain } from "../../src/audit/verify.ts";
import { FakeClock } from "../../src/common/clock.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { keySigner } from "../../src/signing/signer.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";

const engines = storeEngines("audit");
const key = parseSigningKey(generateSigningKeyPem(), "test key");
const otherKey = parseSigningKey(generateSigningKeyPem(), "other key");

const input = (i: number, subject = `sha256:${String(i).padStart(64, "0")}`): AuditInput => ({
  type: "verification",
  actor: { issuer: "https://issuer.example", subject: `repo:acme/web:${i}` },
  subject,
  outcome: i % 2 === 0 ? "allowed" : "denied",
  reason: i % 2 === 0 ? undefined : "signature_missing",
  data: { environment: "staging", n: i, nested: { b: [1, "two", null], a: true } },
});

describe.each(engines)("audit log on %s", (_engine, freshSpec) => {
  let store: Store | undefined;
  let log: AuditLog | undefined;
  afterEach(async () => {
    await log?.close();
    await store?.close();
    log = undefined;
    store = undefined;
  });

  async function open(options: { checkpointEvery?: number } = {}): Promise<AuditLog> {
    store = await openStore(await freshSpec());
    log = new AuditLog({ store, signer: keySigner(key), origin: "https://ferry.example", ...options });
    return log;
  }

  /** Appends `n` entries (concurrently, so they batch) and a checkpoint over them. */
  async function chainOf(n: number): Promise<AuditLog> {
    const audit = await open();
    await Promise.all(Array.from({ length: n }, (_, i) => audit.append(input(i + 1))));
    return audit;
  }

  const all = (audit: AuditLog) => audit.read(0, 10_000);

  it("appends concurrent entries as one chain 1..n that verifies; head, read and entriesFor agree", async () => {
    const audit = await chainOf(40);
    await audit.append(input(41, "promotion-1"));
    await audit.append(input(42, "promotion-1"));
    const entries = await all(audit);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 42 }, (_, i) => i + 1));
    expect(entries[0]!.prev_hash).toBe("0".repeat(64));
    const verdict = verifyChain(entries);
    expect(verdict).toEqual({ ok: true, size: 42, head: entries[41]!.hash });
    expect(await audit.head()).toEqual({ size: 42, hash: entries[41]!.hash });
    expect((await audit.read(40, 1)).map((e) => e.seq)).toEqual([41]);
    expect((await audit.entriesFor("promotion-1")).map((e) => e.seq)).toEqual([41, 42]);
    // What was appended is what is stored: an absent reason is null, data keeps its JSON.
    expect(entries[1]).toMatchObject({ reason: null, outcome: "allowed", data: input(2).data });
    expect(entries[0]!.at).toBeGreaterThan(1_600_000_000_000);
  });

  it("refuses an unknown entry type on append, alone, without failing the others", async () => {
    const audit = await open();
    const bad = audit.append({ ...input(1), type: "made_up" as never });
    const good = audit.append(input(2));
    await expect(bad).rejects.toThrow(/unknown entry type/);
    await good;
    expect((await all(audit)).length).toBe(1);
  });

  it("stores what JSON and both engines can hold, so the stored entry hashes as appended", async () => {
    const audit = await open();
    await audit.append({
      type: "signing",
      actor: { issuer: "https://i.example", subject: "lone \ud800 surrogate" },
      subject: "nul \u0000 byte",
      outcome: "created",
      data: { nan: Number.NaN, gone: undefined, text: "x\udc00y", nested: [1.5, { when: new Date(0) }] },
    });
    const [entry] = await all(audit);
    expect(entry).toMatchObject({
      actor: { subject: "lone \ufffd surrogate" },
      subject: "nul \ufffd byte",
      data: { nan: null, text: "x\ufffdy", nested: [1.5, { when: "1970-01-01T00:00:00.000Z" }] },
    });
    expect(entry!.data).not.toHaveProperty("gone");
    expect(verifyChain([entry!])).toMatchObject({ ok: true });
  });

  it("signs a checkpoint of the head that verifies with Ferry's key, once per new entries", async () => {
    const audit = await chainOf(5);
    expect(await audit.checkpoint()).toBeUndefined();
    const signed = await audit.createCheckpoint();
    expect(signed?.checkpoint).toMatchObject({ origin: "https://ferry.example", size: 5 });
    const checked = verifyCheckpoint(signed!, key.publicKeyPem);
    expect(checked).toEqual({ ok: true, checkpoint: signed!.checkpoint });
    expect(verifyCheckpoint(signed!, otherKey.publicKeyPem).ok).toBe(false);
    // Its own `checkpoint` entry is not news: no second checkpoint until something else is appended.
    await audit.flush();
    expect((await all(audit)).at(-1)).toMatchObject({ seq: 6, type: "checkpoint", subject: "checkpoint/5" });
    expect(await audit.createCheckpoint()).toBeUndefined();
    await audit.append(input(7));
    expect((await audit.createCheckpoint())?.checkpoint.size).toBe(7);
    expect((await audit.checkpoint())?.checkpoint.size).toBe(7);
    const entries = await all(audit);
    expect(verifyChain(entries, (await audit.checkpoint())!, key.publicKey)).toMatchObject({ ok: true });
    expect(verifyChain(entries, (await audit.checkpoint())!, otherKey.publicKey)).toMatchObject({
      ok: false,
      seq: 0,
    });
  });

  it("signs a checkpoint by itself once `every` entries are new", async () => {
    const audit = await open({ checkpointEvery: 3 });
    await Promise.all([1, 2, 3].map((i) => audit.append(input(i))));
    await audit.close();
    expect((await audit.checkpoint())?.checkpoint.size).toBe(3);
  });

  it("signs a checkpoint every interval when anything is new, on the clock it is given", async () => {
    const clock = new FakeClock();
    store = await openStore(await freshSpec());
    log = new AuditLog({ store, signer: keySigner(key), checkpointInterval: 60_000, clock });
    const audit = log;
    audit.start();
    await audit.append(input(1));
    await clock.whenSleeping();
    await clock.advance(60_000);
    // The loop sleeps again once the checkpoint is signed and its entry appended.
    await clock.whenSleeping();
    expect((await audit.checkpoint())?.checkpoint.size).toBe(1);
    // Nothing new but the checkpoint's own entry: the next interval signs nothing.
    await clock.advance(60_000);
    await clock.whenSleeping();
    expect((await audit.checkpoints()).length).toBe(1);
  });

  describe("tampering is detected and located", () => {
    it("an untouched chain verifies against its checkpoint", async () => {
      const audit = await chainOf(8);
      const cp = await audit.createCheckpoint();
      await audit.flush();
      expect(verifyChain(await all(audit), cp!, key.publicKey)).toEqual({
        ok: true,
        size: 9,
        head: (await audit.head()).hash,
      });
    });

    it("an edited row fails its own hash", async () => {
      const audit = await chainOf(8);
      await sql`update audit_log set outcome = 'allowed' where seq = 5`.execute(store!.db);
      expect(verifyChain(await all(audit))).toMatchObject({ ok: false, seq: 5 });
      await sql`update audit_log set data = ${'{"environment":"production"}'} where seq = 3`.execute(
        store!.db,
      );
      expect(verifyChain(await all(audit))).toMatchObject({ ok: false, seq: 3 });
    });

    it("a deleted row leaves a gap", async () => {
      const audit = await chainOf(8);
      await sql`delete from audit_log where seq = 4`.execute(store!.db);
      expect(verifyChain(await all(audit))).toMatchObject({
        ok: false,
        seq: 4,
        problem: expect.stringMatching(/missing/),
      });
    });

    it("two swapped rows fail at the first of them", async () => {
      const audit = await chainOf(8);
      // Swap everything but the sequence numbers: the rows trade places in the order.
      await store!.transaction(async (tx) => {
        const rows = await tx
          .selectFrom("audit_log")
          .selectAll()
          .where("seq", "in", [3, 6])
          .orderBy("seq")
          .execute();
        const [a, b] = rows as [(typeof rows)[0], (typeof rows)[0]];
        await tx
          .updateTable("audit_log")
          .set({ ...b, seq: 3 })
          .where("seq", "=", 3)
          .execute();
        await tx
          .updateTable("audit_log")
          .set({ ...a, seq: 6 })
          .where("seq", "=", 6)
          .execute();
      });
      expect(verifyChain(await all(audit))).toMatchObject({ ok: false, seq: 3 });
    });

    it("a tail cut below the checkpoint's size is caught by the checkpoint", async () => {
      const audit = await chainOf(8);
      const cp = await audit.createCheckpoint();
      await audit.flush();
      await sql`delete from audit_log where seq > 6`.execute(store!.db);
      const entries = await all(audit);
      // The shortened chain is internally consistent: only the checkpoint reveals the cut.
      expect(verifyChain(entries)).toMatchObject({ ok: true, size: 6 });
      expect(verifyChain(entries, cp!, key.publicKey)).toMatchObject({ ok: false, seq: 7 });
    });

    it("a chain rewritten and re-hashed after an edit differs from the checkpoint's head", async () => {
      const audit = await chainOf(6);
      const cp = await audit.createCheckpoint();
      const entries = await all(audit);
      // Edit entry 2 and recompute every later hash, as a forger with database access would.
      const forged = entries.map((e) => ({ ...e }));
      forged[1]!.outcome = "tampered";
      for (let i = 1; i < forged.length; i++) {
        forged[i]!.prev_hash = forged[i - 1]!.hash;
        forged[i]!.hash = entryHash(forged[i]!);
      }
      expect(verifyChain(forged)).toMatchObject({ ok: true });
      expect(verifyChain(forged, cp!, key.publicKey)).toMatchObject({ ok: false, seq: 6 });
    });
  });
});
