import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";

/** A fresh, empty database of each engine. */
const engines = storeEngines("store", "nested/ferry.db");

describe.each(engines)("store on %s", (engine, freshSpec) => {
  it("migrates an empty database, is idempotent on reopen, and answers ping", async () => {
    const spec = await freshSpec();
    const first = await openStore(spec);
    expect(first.engine).toBe(engine);
    await first.ping();
    await first.close();
    const second = await openStore(spec);
    const migrations = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
      second.db,
    );
    expect(migrations.rows.map((r) => r.name)).toEqual(Object.keys(MIGRATIONS).sort());
    expect(migrations.rows.map((r) => r.name)).toContain("0001_leases");
    await second.close();
    await expect(second.ping()).rejects.toThrow();
  });

  it("round-trips rows through the query layer", async () => {
    const store = await openStore(await freshSpec());
    try {
      await store.db
        .insertInto("leases")
        .values({ name: "n", holder: "h", expires_at: 1_700_000_000_123, acquired_at: 5 })
        .execute();
      const row = await store.db
        .selectFrom("leases")
        .selectAll()
        .where("name", "=", "n")
        .executeTakeFirstOrThrow();
      expect(row).toEqual({
        name: "n",
        holder: "h",
        expires_at: 1_700_000_000_123,
        acquired_at: 5,
        fence: 1,
      });
    } finally {
      await store.close();
    }
  });

  it("leases: exclusive, renewable by the holder, released, and taken over after expiry with a new fence", async () => {
    const clock = new FakeClock();
    const store = await openStore(await freshSpec(), { clock });
    try {
      const a = await store.leases.acquire("promotion:web", "replica-a", 60_000);
      expect(a).toMatchObject({ name: "promotion:web", holder: "replica-a", fence: 1 });
      expect(a!.expiresAt - a!.acquiredAt).toBe(60_000);
      expect(await store.leases.acquire("promotion:web", "replica-b", 60_000)).toBeUndefined();
      expect(await store.leases.holder("promotion:web")).toBe("replica-a");

      const renewed = await store.leases.acquire("promotion:web", "replica-a", 120_000);
      expect(renewed).toMatchObject({ holder: "replica-a", fence: 1, acquiredAt: a!.acquiredAt });
      expect(renewed!.expiresAt).toBeGreaterThan(a!.expiresAt);

      expect(await store.leases.release("promotion:web", "replica-b")).toBe(false);
      expect(await store.leases.release("promotion:web", "replica-a")).toBe(true);
      expect(await store.leases.holder("promotion:web")).toBeUndefined();
      expect(await store.leases.acquire("promotion:web", "replica-b", 60_000)).toMatchObject({
        holder: "replica-b",
        fence: 1,
      });

      const short = await store.leases.acquire("short", "replica-a", 30);
      expect(short?.fence).toBe(1);
      await clock.advance(30);
      expect(await store.leases.holder("short")).toBeUndefined();
      const taken = await store.leases.acquire("short", "replica-b", 60_000);
      expect(taken).toMatchObject({ holder: "replica-b", fence: 2 });
      await expect(store.leases.acquire("x", "a", 0)).rejects.toThrow(RangeError);
    } finally {
      await store.close();
    }
  });
});

describe.each(engines)("transactions on %s", (_engine, freshSpec) => {
  const ids = async (store: Store) =>
    (await store.db.selectFrom("token_replay").select("id").orderBy("id").execute()).map((r) => r.id.trim()); // char(64): PostgreSQL pads

  it("commits every row together and returns fn's result", async () => {
    const store = await openStore(await freshSpec());
    try {
      const result = await store.transaction(async (tx) => {
        await tx.insertInto("token_replay").values({ id: "a", expires_at: 1 }).execute();
        await tx.insertInto("token_replay").values({ id: "b", expires_at: 1 }).execute();
        return "done";
      });
      expect(result).toBe("done");
      expect(await ids(store)).toEqual(["a", "b"]);
    } finally {
      await store.close();
    }
  });

  it("a failure inside the transaction leaves no row: a thrown error or a failing statement", async () => {
    const store = await openStore(await freshSpec());
    try {
      await expect(
        store.transaction(async (tx) => {
          await tx.insertInto("token_replay").values({ id: "a", expires_at: 1 }).execute();
          throw new Error("crash after the first row");
        }),
      ).rejects.toThrow("crash after the first row");
      await expect(
        store.transaction(async (tx) => {
          await tx.insertInto("token_replay").values({ id: "b", expires_at: 1 }).execute();
          await tx.insertInto("token_replay").values({ id: "b", expires_at: 2 }).execute();
        }),
      ).rejects.toThrow();
      expect(await ids(store)).toEqual([]);
      // The connection is usable afterwards, outside any transaction.
      await store.db.insertInto("token_replay").values({ id: "c", expires_at: 1 }).execute();
      expect(await ids(store)).toEqual(["c"]);
    } finally {
      await store.close();
    }
  });

  it("another request's write during an open transaction is not swept into its rollback", async () => {
    const store = await openStore(await freshSpec());
    try {
      let outside: Promise<unknown> | undefined;
      await expect(
        store.transaction(async (tx) => {
          await tx.insertInto("token_replay").values({ id: "inside", expires_at: 1 }).execute();
          // A concurrent request writes through the store (on SQLite it queues behind the transaction).
          outside = store.db.insertInto("token_replay").values({ id: "outside", expires_at: 1 }).execute();
          await tx.selectFrom("token_replay").selectAll().execute();
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      await outside;
      expect(await ids(store)).toEqual(["outside"]);
    } finally {
      await store.close();
    }
  });

  it("the database clock is epoch milliseconds", async () => {
    const store = await openStore(await freshSpec());
    try {
      const { rows } = await sql<{ now: number }>`select ${store.nowMs()} as now`.execute(store.db);
      const now = Number(rows[0]!.now);
      expect(Number.isInteger(now)).toBe(true);
      // Units, not timing: seconds or microseconds would be off by a factor of 1000.
      expect(Math.abs(now - Date.now())).toBeLessThan(3_600_000);
    } finally {
      await store.close();
    }
  });
});

describe("leases across replicas on PostgreSQL", () => {
  it("exactly one of many concurrent acquirers on separate connections wins", async () => {
    const spec = await engines[1]![1]();
    const replicas: Store[] = [];
    for (let i = 0; i < 4; i++) replicas.push(await openStore(spec));
    try {
      for (let round = 0; round < 10; round++) {
        const name = `race-${round}`;
        const attempts = replicas.flatMap((store, r) =>
          [0, 1, 2].map((k) => store.leases.acquire(name, `replica-${r}-${k}`, 60_000)),
        );
        const winners = (await Promise.all(attempts)).filter((lease) => lease !== undefined);
        expect(winners).toHaveLength(1);
        const holder = await replicas[0]!.leases.holder(name);
        expect(holder).toBe(winners[0]!.holder);
      }
    } finally {
      await Promise.all(replicas.map((s) => s.close()));
    }
  });
});
