import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { type HeldLease, LeaseBusyError, LeaseLostError } from "../../src/store/leases.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";

const engines = storeEngines("leases");

/** A promise and the function that resolves it. */
function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe.each(engines)("withLease on %s", (_engine, freshSpec) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  /** A row the fenced writes below compete for: `token_replay` stands in for any table. */
  async function open(clock: FakeClock): Promise<Store> {
    store = await openStore(await freshSpec(), { clock });
    await store.db.insertInto("token_replay").values({ id: "job", expires_at: 0 }).execute();
    return store;
  }
  const writeAs = (s: Store, lease: HeldLease, value: number) =>
    lease.fenced(s.db.updateTable("token_replay").set({ expires_at: value }).where("id", "=", "job"));
  const written = async (s: Store) =>
    (
      await s.db
        .selectFrom("token_replay")
        .select("expires_at")
        .where("id", "=", "job")
        .executeTakeFirstOrThrow()
    ).expires_at;

  it("renews in the background, so work may outlast the TTL; releases at the end", async () => {
    const clock = new FakeClock();
    const s = await open(clock);
    const finish = deferred();
    const work = s.withLease("job", { ttl: 1_000, renewEvery: 300 }, async (lease, signal) => {
      await finish.promise;
      return { wrote: await writeAs(s, lease, 1), aborted: signal.aborted };
    });
    // Three times the TTL, one renewal interval at a time.
    for (let t = 0; t < 10; t++) {
      await clock.whenSleeping(1);
      await clock.advance(300);
    }
    await clock.whenSleeping(1);
    expect(await s.leases.holder("job")).toBeDefined();
    finish.resolve();
    expect(await work).toEqual({ wrote: true, aborted: false });
    expect(await written(s)).toBe(1);
    expect(await s.leases.holder("job")).toBeUndefined();
    expect(clock.sleepers).toBe(0);
  });

  it("a holder that stalls past its TTL loses the lease: its signal aborts and its fenced write is refused", async () => {
    const clock = new FakeClock();
    const s = await open(clock);
    const held = deferred<{ lease: HeldLease; signal: AbortSignal }>();
    const goOn = deferred();
    const stalled = s.withLease("job", { ttl: 1_000, renewEvery: 300 }, async (lease, signal) => {
      held.resolve({ lease, signal });
      await goOn.promise;
      return writeAs(s, lease, 1);
    });
    const a = await held.promise;
    expect(a.lease.fence).toBe(1);
    await clock.whenSleeping(1);

    // The process stalls for 1.5 s: its renewal timer fires late, after the lease has expired.
    const lost = new Promise<unknown>((resolve) =>
      a.signal.addEventListener("abort", () => resolve(a.signal.reason), { once: true }),
    );
    await clock.jump(1_500);
    const reason = await lost;
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as LeaseLostError).lease).toBe("job");

    // Another holder takes it over (a new fence) and writes; the stalled one wakes up and tries.
    const bHolds = deferred<HeldLease>();
    const bDone = deferred();
    const other = s.withLease("job", { ttl: 1_000 }, async (lease) => {
      bHolds.resolve(lease);
      await bDone.promise;
      return writeAs(s, lease, 2);
    });
    const b = await bHolds.promise;
    expect(b.fence).toBe(2);
    goOn.resolve();
    expect(await stalled).toBe(false);
    expect(await written(s)).toBe(0);
    bDone.resolve();
    expect(await other).toBe(true);
    expect(await written(s)).toBe(2);
  });

  it("a holder whose lease expired writes nothing even before anyone else takes it", async () => {
    const clock = new FakeClock();
    const s = await open(clock);
    const result = await s.withLease("job", { ttl: 1_000, renewEvery: 300 }, async (lease, signal) => {
      const lost = new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      await clock.jump(1_001);
      // Whether or not the renewal has noticed yet, the fence refuses the write.
      const wrote = await writeAs(s, lease, 1);
      await lost;
      return { wrote, reason: signal.reason };
    });
    expect(result).toEqual({ wrote: false, reason: expect.any(LeaseLostError) });
    expect(await written(s)).toBe(0);
  });

  it("waits for a held lease (backoff timed by the clock), then gives up with LeaseBusyError", async () => {
    const clock = new FakeClock();
    const s = await open(clock);
    expect(await s.leases.acquire("job", "someone-else", 60_000)).toBeDefined();

    const refused = s.withLease("job", { ttl: 1_000, wait: 500 }, async () => "ran");
    const settled = refused.then(
      () => undefined,
      () => undefined,
    );
    let done = false;
    void settled.then(() => {
      done = true;
    });
    while (!done) {
      await Promise.race([clock.whenSleeping(1), settled]);
      if (!done) await clock.advance(50);
    }
    await expect(refused).rejects.toBeInstanceOf(LeaseBusyError);
    expect(clock.now() - Date.UTC(2026, 0, 1)).toBeGreaterThanOrEqual(500);

    const waiting = s.withLease("job", { ttl: 1_000, wait: 5_000 }, async (lease) => lease.fence);
    await clock.whenSleeping(1);
    expect(await s.leases.release("job", "someone-else")).toBe(true);
    await clock.advance(1_000);
    expect(await waiting).toBe(1);

    await expect(s.withLease("job", { ttl: 1_000 }, async () => "immediate")).resolves.toBe("immediate");
    await expect(s.withLease("job", { ttl: 1_000, renewEvery: 1_000 }, async () => 1)).rejects.toThrow(
      RangeError,
    );
  });

  it("a renewal the database does not answer aborts the signal (fail closed)", async () => {
    const clock = new FakeClock();
    const s = await open(clock);
    const reason = await s.withLease("job", { ttl: 1_000, renewEvery: 300 }, async (_lease, signal) => {
      await clock.whenSleeping(1);
      await s.close(); // the database goes away under the holder
      const lost = new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      await clock.advance(300);
      await lost;
      return signal.reason as LeaseLostError;
    });
    store = undefined;
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(reason.message).toBe("lease job was lost: renewing it failed");
    expect(reason.cause).toBeInstanceOf(Error);
  });

  it("releases the lease when the work throws, and passes the error on", async () => {
    const s = await open(new FakeClock());
    await expect(
      s.withLease("job", { ttl: 1_000 }, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await s.leases.holder("job")).toBeUndefined();
  });
});
