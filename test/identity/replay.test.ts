import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { isIdentityError } from "../../src/identity/errors.ts";
import { StoreReplayGuard } from "../../src/identity/replay.ts";
import type { VerifiedToken } from "../../src/identity/verifier.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { verifiedToken } from "../support/identity.ts";
import { storeEngines } from "../support/store.ts";

const engines = storeEngines("replay");

function token(id: string, expiresAt: number): VerifiedToken {
  return verifiedToken({
    jti: id,
    issuedAt: expiresAt - 300,
    expiresAt,
    sha256: id.padEnd(64, "0"),
    replayKey: id.padEnd(64, "0"),
  });
}

async function consumed(guard: StoreReplayGuard, t: VerifiedToken): Promise<boolean> {
  try {
    await guard.consume(t);
    return true;
  } catch (err) {
    if (isIdentityError(err, "token_replayed")) return false;
    throw err;
  }
}

describe.each(engines)("replay protection on %s", (_engine, freshSpec) => {
  it("a token is single-use, across a restart of the store", async () => {
    const spec = await freshSpec();
    const exp = Math.floor(Date.now() / 1000) + 300;
    const first = await openStore(spec);
    expect(await consumed(new StoreReplayGuard(first), token("a", exp))).toBe(true);
    expect(await consumed(new StoreReplayGuard(first), token("a", exp))).toBe(false);
    await first.close();
    const second = await openStore(spec);
    try {
      expect(await consumed(new StoreReplayGuard(second), token("a", exp))).toBe(false);
      expect(await consumed(new StoreReplayGuard(second), token("b", exp))).toBe(true);
    } finally {
      await second.close();
    }
  });

  it("of 12 concurrent uses on separate connections (two replicas), exactly one wins", async () => {
    const spec = await freshSpec();
    const [a, b] = [await openStore(spec), await openStore(spec)];
    try {
      const exp = Math.floor(Date.now() / 1000) + 300;
      const guards = [new StoreReplayGuard(a), new StoreReplayGuard(b)];
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => consumed(guards[i % 2]!, token("race", exp))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("keeps rows until exp plus leeway by the database's clock, then purges them", async () => {
    const store = await openStore(await freshSpec());
    try {
      const guard = new StoreReplayGuard(store, { purgeEveryMs: 0 });
      const seconds = Math.floor(Date.now() / 1000);
      // The issuer's leeway is 60 s: "lee" expired 30 s ago but is still accepted, so it stays.
      await guard.consume(token("old", seconds - 120));
      await guard.consume(token("lee", seconds - 30));
      await guard.consume(token("new", seconds + 300));
      expect((await ids(store)).sort()).toEqual(["l", "n"]);
    } finally {
      await store.close();
    }
  });

  it("a replica whose clock runs ahead never purges a row the database's clock still needs", async () => {
    const store = await openStore(await freshSpec());
    try {
      const tenYears = 10 * 365 * 86_400_000;
      const guard = new StoreReplayGuard(store, {
        clock: new FakeClock(Date.now() + tenYears),
        purgeEveryMs: 0,
      });
      const seconds = Math.floor(Date.now() / 1000);
      await guard.consume(token("live", seconds + 300));
      await guard.consume(token("gone", seconds - 120));
      expect(await ids(store)).toEqual(["l"]);
      // Its token is still within exp, so using it again on any replica must still be a replay.
      expect(await consumed(new StoreReplayGuard(store), token("live", seconds + 300))).toBe(false);
    } finally {
      await store.close();
    }
  });

  it("a replica whose clock lags still purges what the database's clock says has expired", async () => {
    const store = await openStore(await freshSpec());
    try {
      const guard = new StoreReplayGuard(store, { clock: new FakeClock(1_000_000), purgeEveryMs: 0 });
      const seconds = Math.floor(Date.now() / 1000);
      await guard.consume(token("gone", seconds - 120));
      await guard.consume(token("live", seconds + 300));
      expect(await ids(store)).toEqual(["l"]);
    } finally {
      await store.close();
    }
  });
});

/** The first letter of every row's id (the tests' tokens are named by it). */
async function ids(store: Store): Promise<string[]> {
  return (await store.db.selectFrom("token_replay").select("id").execute()).map((r) => r.id[0]!);
}
