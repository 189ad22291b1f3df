/**
 * `npm run bench:audit [entries] [in flight]`: appends per second to the audit log on SQLite and on
 * PostgreSQL (a throwaway cluster from test/support/postgres.ts, fsync off as in the tests), two
 * ways: batched (`in flight` appends outstanding at a time, as concurrent token exchanges make them,
 * so they share transactions) and one at a time (each append awaited: one transaction per entry,
 * the floor). Also how fast `verifyChain` checks the result. Prints entries/s; no assertions: a
 * figure to compare across changes on the same machine (two processes on one PostgreSQL are
 * exercised for correctness by test/audit/replicas.test.ts).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { AuditLog } from "../src/audit/log.ts";
import type { AuditInput } from "../src/audit/types.ts";
import { verifyChain } from "../src/audit/verify.ts";
import { openStore, type StoreSpec } from "../src/store/store.ts";
import { startPostgres } from "../test/support/postgres.ts";

const total = Number(process.argv[2] ?? 20_000);
const inFlight = Number(process.argv[3] ?? 256);
const serial = Math.min(2_000, total);

const entry = (i: number): AuditInput => ({
  type: "token_exchange",
  actor: {
    issuer: "https://token.actions.githubusercontent.com",
    subject: `repo:acme/web:ref:refs/heads/main:${i}`,
  },
  subject: "deploy-staging",
  outcome: "granted",
  data: {
    exchangeId: `0190f5c2-0000-7000-8000-${String(i).padStart(12, "0")}`,
    requestId: `req-${i}`,
    tokenSha256: "a".repeat(64),
    issuedId: `jti-${i}`,
    expiresAt: 1_800_000_000_000 + i,
  },
});

async function batched(log: AuditLog, n: number, offset: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) await log.append(entry(offset + next++));
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return performance.now() - started;
}

async function oneByOne(log: AuditLog, n: number, offset: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await log.append(entry(offset + i));
  return performance.now() - started;
}

async function measure(name: string, spec: StoreSpec): Promise<void> {
  const store = await openStore(spec);
  try {
    const log = new AuditLog({ store });
    await batched(log, 500, 0); // warm-up: statement caches, pool connections
    const b = await batched(log, total, 500);
    const s = await oneByOne(log, serial, 500 + total);
    const entries = await log.read(0, 1_000_000);
    const verdict = verifyChain(entries);
    if (!verdict.ok) throw new Error(`${name}: chain broken at ${verdict.seq}: ${verdict.problem}`);
    const v0 = performance.now();
    verifyChain(entries);
    const v = performance.now() - v0;
    console.log(
      `${name.padEnd(10)} batched (${inFlight} in flight): ${Math.round((total / b) * 1000)} entries/s` +
        ` | one at a time: ${Math.round((serial / s) * 1000)} entries/s` +
        ` | verifyChain: ${Math.round((entries.length / v) * 1000)} entries/s over ${entries.length}`,
    );
  } finally {
    await store.close();
  }
}

const dir = mkdtempSync(path.join(tmpdir(), "ferry-bench-audit-"));
console.log(`audit log appends: ${total} batched, ${serial} one at a time, node ${process.version}`);
await measure("sqlite", { sqlite: path.join(dir, "ferry.db") });
const postgres = await startPostgres();
try {
  await measure("postgres", { postgres: await postgres.createDatabase("ferry_bench_audit") });
} finally {
  await postgres.stop();
}
