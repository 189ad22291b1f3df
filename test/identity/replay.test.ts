import { describe, expect, it } from "vitest";
import { isIdentityError } from "../../src/identity/errors.ts";
import { StoreReplayGuard } from "../../src/identity/replay.ts";
import type { VerifiedToken } from "../../src/identity/verifier.ts";
import { openStore } from "../../src/store/store.ts";
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
    expect(await consumed(new StoreReplayGuard(first.db), token("a", exp))).toBe(true);
    expect(await consumed(new StoreReplayGuard(first.db), token("a", exp))).toBe(false);
    await first.close();
    const second = await openStore(spec);
    try {
      expect(await consumed(new StoreReplayGuard(second.db), token("a", exp))).toBe(false);
      expect(await consumed(new StoreReplayGuard(second.db), token("b", exp))).toBe(true);
    } finally {
      await second.close();
    }
  });

  it("of 12 concurrent uses on separate connections (two replicas), exactly one wins", async () => {
    const spec = await freshSpec();
    const [a, b] = [await openStore(spec), await openStore(spec)];
    try {
      const exp = Math.floor(Date.now() / 1000) + 300;
      const guards = [new StoreReplayGuard(a.db), new StoreReplayGuard(b.db)];
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => consumed(guards[i % 2]!, token("race", exp))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("keeps rows until exp plus leeway, then purges them", async () => {
    const store = await openStore(await freshSpec());
    try {
      let now = 1_800_000_000_000;
      const guard = new StoreReplayGuard(store.db, { now: () => now, purgeEveryMs: 0 });
      await guard.consume(token("old", now / 1000 + 10));
      now += 70_000 - 1;
      await guard.consume(token("x1", now / 1000 + 300));
      const ids = async () =>
        (await store.db.selectFrom("token_replay").select("id").execute()).map((r) => r.id[0]);
      expect((await ids()).sort()).toEqual(["o", "x"]);
      now += 2;
      await guard.consume(token("y1", now / 1000 + 300));
      expect((await ids()).sort()).toEqual(["x", "y"]);
    } finally {
      await store.close();
    }
  });
});
