import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { entryHash } from "../../src/audit/hash.ts";
import { AuditLog } from "../../src/audit/log.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { keySigner } from "../../src/signing/signer.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { NO_STACK, runFerryInProcess } from "../support/cli.ts";

/** A config whose SQLite store holds 15 entries and two checkpoints (sizes 10 and 16). */
async function seeded(): Promise<{ config: string; db: string; keyFile: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-audit-cli-"));
  const pem = generateSigningKeyPem();
  const keyFile = path.join(dir, "signing.pem");
  writeFileSync(keyFile, pem, { mode: 0o600 });
  const db = path.join(dir, "ferry.db");
  const config = path.join(dir, "ferry.yaml");
  writeFileSync(config, `store: { sqlite: ./ferry.db }\nkeys: { signing: ./signing.pem }\n`);
  const store = await openStore({ sqlite: db });
  const log = new AuditLog({
    store,
    signer: keySigner(parseSigningKey(pem, keyFile)),
    origin: "https://f.test",
  });
  const append = (i: number) =>
    log.append({ type: "signing", actor: "ferry", subject: `d${i}`, outcome: "created", data: { i } });
  await Promise.all(Array.from({ length: 10 }, (_, i) => append(i)));
  await log.createCheckpoint();
  await Promise.all(Array.from({ length: 5 }, (_, i) => append(10 + i)));
  await log.createCheckpoint();
  await log.close();
  await store.close();
  return { config, db, keyFile };
}

async function withStore(db: string, fn: (store: Store) => Promise<unknown>): Promise<void> {
  const store = await openStore({ sqlite: db });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

const verify = (config: string) => runFerryInProcess(["audit", "verify", "--config", config]);

describe("ferry audit verify --config", () => {
  it("verifies the store's chain and every checkpoint", async () => {
    const { config } = await seeded();
    const run = await verify(config);
    expect(run.code, run.err).toBe(0);
    expect(run.out).toMatch(
      /^audit log ok: 17 entries, head [0-9a-f]{64}; checkpoint of size 16 \(2 stored\)/,
    );
  });

  it("locates an edit, and a rewrite re-hashed to the end at the older checkpoint that it broke", async () => {
    const edited = await seeded();
    await withStore(edited.db, (s) => sql`update audit_log set subject = 'x' where seq = 4`.execute(s.db));
    const a = await verify(edited.config);
    expect(a.code).toBe(1);
    expect(a.out).toContain("audit log BAD at seq 4:");
    expect(a.err).not.toMatch(NO_STACK);

    const rewritten = await seeded();
    await withStore(rewritten.db, async (s) => {
      const log = new AuditLog({ store: s });
      const entries = await log.read(0, 100);
      entries[2]!.outcome = "forged";
      for (let i = 2; i < entries.length; i++) {
        if (i > 2) entries[i]!.prev_hash = entries[i - 1]!.hash;
        entries[i]!.hash = entryHash(entries[i]!);
        const e = entries[i]!;
        await s.db
          .updateTable("audit_log")
          .set({ outcome: e.outcome, prev_hash: e.prev_hash, hash: e.hash })
          .where("seq", "=", e.seq)
          .execute();
      }
      await s.db
        .updateTable("audit_head")
        .set({ hash: entries.at(-1)!.hash })
        .execute();
    });
    const b = await verify(rewritten.config);
    expect(b.code).toBe(1);
    expect(b.out).toContain("audit log BAD at seq 10:");
  });

  it("a foreign --key fails the checkpoint (seq 0); a missing config is exit 2", async () => {
    const { config } = await seeded();
    const other = path.join(mkdtempSync(path.join(tmpdir(), "ferry-audit-key-")), "other.pub");
    writeFileSync(other, parseSigningKey(generateSigningKeyPem(), "other").publicKeyPem);
    const run = await runFerryInProcess(["audit", "verify", "--config", config, "--key", other]);
    expect(run.code).toBe(1);
    expect(run.out).toContain("audit log BAD at seq 0: the checkpoint's signature does not verify");
    const missing = await runFerryInProcess(["audit", "verify", "--config", `${config}.missing`]);
    expect(missing.code).toBe(2);
  });
});
