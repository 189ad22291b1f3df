import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/log.ts";
import { verifyChain } from "../../src/audit/verify.ts";
import { openStore } from "../../src/store/store.ts";
import { startPostgres, type TestPostgres } from "../support/postgres.ts";

const WORKER = new URL("./append-worker.ts", import.meta.url).pathname;
const WAVES = 20;
const PER_WAVE = 40;

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

/** Starts a worker process; resolves once it has opened the store. */
async function worker(url: string, label: string) {
  const child = spawn(process.execPath, [WORKER, url, label, String(WAVES), String(PER_WAVE)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    err += d;
  });
  const exited = once(child, "close");
  while (!out.includes("ready\n")) {
    const closed = await Promise.race([
      once(child.stdout, "data").then(() => false),
      exited.then(() => true),
    ]);
    if (closed) throw new Error(`worker ${label} exited before ready: ${err}`);
  }
  return {
    go: () => child.stdin.end("go\n"),
    done: async () => {
      const [code] = await exited;
      return { code: code as number, out, err };
    },
  };
}

describe("audit appends from two processes on one PostgreSQL", () => {
  it("make one chain: no gap, no fork, every entry of both present", async () => {
    const url = await postgres.createDatabase("ferry_audit_replicas");
    // Migrate once, so the workers race on appends rather than on the migration lock.
    const store = await openStore({ postgres: url });
    try {
      const [a, b] = await Promise.all([worker(url, "replica-a"), worker(url, "replica-b")]);
      a.go();
      b.go();
      const results = await Promise.all([a.done(), b.done()]);
      for (const r of results) {
        expect(r.code, r.err).toBe(0);
        expect(r.out).toContain(`done ${WAVES * PER_WAVE} failed 0`);
      }
      const log = new AuditLog({ store });
      const entries = await log.read(0, 10_000);
      expect(entries.length).toBe(2 * WAVES * PER_WAVE);
      expect(verifyChain(entries)).toEqual({ ok: true, size: entries.length, head: entries.at(-1)!.hash });
      expect(await log.head()).toEqual({ size: entries.length, hash: entries.at(-1)!.hash });
      for (const label of ["replica-a", "replica-b"]) {
        const subjects = new Set(
          entries.filter((e) => e.subject.startsWith(`${label}-`)).map((e) => e.subject),
        );
        expect(subjects.size).toBe(WAVES * PER_WAVE);
      }
    } finally {
      await store.close();
    }
  });
});
