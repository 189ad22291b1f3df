import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { FerryError } from "../../src/common/errors.ts";
import { createLogger } from "../../src/common/logger.ts";
import { parseConfigText } from "../../src/config/load.ts";
import type { PipelinePrincipal } from "../../src/identity/principal.ts";
import { compileTrustPolicies } from "../../src/identity/trust-policies.ts";
import { createPromotion, type Promotion } from "../../src/promotion/create.ts";
import type { PromotionRegistry, PromotionVerifier } from "../../src/promotion/ports.ts";
import { pairLease } from "../../src/promotion/worker.ts";
import { type HeldLease, LeaseLostError } from "../../src/store/leases.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { decide } from "../../src/verify/report.ts";
import { codeOf } from "../support/outcomes.ts";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;
const HOUR = 3_600_000;

const CONFIG = `
store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
issuers:
  - { name: github, url: "https://token.actions.githubusercontent.com", audience: ferry }
environments:
  - name: staging
  - name: production
    after: staging
    soak: 1h
  - name: frozen
    after: staging
    freeze:
      - { cron: "0 16 * * 5", duration: 64h, timeZone: Europe/Berlin }
  - name: gated
    approvals: { count: 1, groups: [release] }
  - name: locked
    freeze:
      - { from: "2026-01-01T00:00:00Z", to: "2027-01-01T00:00:00Z" }
apps:
  - name: web
    images:
      staging: reg.test/staging/web
      production: reg.test/prod/web
      frozen: reg.test/frozen/web
      gated: reg.test/gated/web
      locked: reg.test/staging/web
    pipelines:
      - { issuer: github, claims: { repository_id: "74" } }
promotion: { maxWait: 72h, stepRetries: 2 }
`;

/** An in-memory twin of the registry port: repositories holding digests, copies counted. */
class MemoryRegistry implements PromotionRegistry {
  readonly repos = new Map<string, Set<string>>();
  copies = 0;
  failCopies = 0;
  put(repo: string, digest: string) {
    if (!this.repos.has(repo)) this.repos.set(repo, new Set());
    this.repos.get(repo)!.add(digest);
  }
  unreachable = false;
  async exists(repository: string, digest: string) {
    if (this.unreachable) throw new FerryError("upstream_failed", "the registry answered 503");
    return this.repos.get(repository)?.has(digest) ?? false;
  }
  async copy(source: string, target: string, digest: string) {
    if (this.failCopies > 0) {
      this.failCopies--;
      throw new FerryError("upstream_failed", "the registry answered 503");
    }
    if (!(await this.exists(source, digest))) throw new FerryError("not_found", "no such manifest");
    this.copies++;
    this.put(target, digest);
    return { manifests: new Set([digest]), blobs: new Set<string>() };
  }
}

/** An in-memory twin of the verifier port: every digest verifies except those in `denied` (per repository). */
class MemoryVerifier implements PromotionVerifier {
  readonly denied = new Set<string>();
  /** What each verification was told a copy had established (undefined: nothing). */
  readonly seeds: { image: string; copied: Parameters<PromotionVerifier["verify"]>[3] }[] = [];
  async verify(
    image: string,
    environment: string,
    _signal: AbortSignal,
    copied?: Parameters<PromotionVerifier["verify"]>[3],
  ) {
    this.seeds.push({ image, copied });
    const digest = image.slice(image.indexOf("@") + 1);
    const passed = !this.denied.has(image);
    return decide(digest, environment, [
      { name: "signature", passed, reason: passed ? "verified" : "no_trusted_signature", message: "m" },
    ]);
  }
  policyHash(environment: string) {
    return `hash-of-${environment}`;
  }
}

const pipeline: PipelinePrincipal = {
  kind: "pipeline",
  via: "oidc",
  issuer: { name: "github", url: "https://token.actions.githubusercontent.com", platform: "github" },
  subject: "repo:acme/web:ref:refs/heads/main",
  claims: { repository_id: "74", actor: "octocat", repository: "acme/web", run_id: "99" },
  tokenSha256: "0".repeat(64),
};

let clock: FakeClock;
let store: Store;
let registry: MemoryRegistry;
let verifier: MemoryVerifier;
let promotion: Promotion;

beforeEach(async () => {
  // Friday 2026-03-20 10:00 UTC: a week before the spring daylight-saving change in Berlin.
  clock = new FakeClock(Date.UTC(2026, 2, 20, 10));
  const file = path.join(mkdtempSync(path.join(tmpdir(), "ferry-engine-")), "ferry.db");
  store = await openStore({ sqlite: file }, { clock });
  registry = new MemoryRegistry();
  verifier = new MemoryVerifier();
  for (const d of [D1, D2, D3]) registry.put("reg.test/staging/web", d);
  const { config } = parseConfigText(CONFIG, "/etc/ferry/ferry.yaml", {});
  const sink = new Writable({ write: (_c, _e, done) => done() });
  promotion = createPromotion({
    config,
    appPipelines: compileTrustPolicies(config).apps,
    store,
    registry,
    verifier,
    clock,
    logger: createLogger("error", sink),
  });
});

afterEach(async () => {
  await promotion.close();
  await store.close();
});

/** Lets the worker do everything due now. */
async function work() {
  await promotion.worker.tick();
  await promotion.worker.idle();
}

async function promote(digest: string, to: string, extra: { rollback?: boolean; reason?: string } = {}) {
  const { promotion: p } = await promotion.service.request(pipeline, { app: "web", digest, to, ...extra });
  return p.id;
}

const get = (id: string) => promotion.service.get(pipeline, id);

describe("the promotion engine", () => {
  it("promotes into the first environment without copying, and records it once", async () => {
    const id = await promote(D1, "staging");
    await work();
    const p = await get(id);
    expect(p.state).toBe("promoted");
    expect(p.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "copy:done",
      "gitops:skipped",
      "evidence:skipped",
      "record:done",
    ]);
    expect(registry.copies).toBe(0);
    expect(p.gates.find((g) => g.name === "verification")?.status).toBe("passed");
    expect(p.verification).toMatchObject({ policyHash: "hash-of-staging", source: { allowed: true } });
    expect(p.requestedBy).toEqual({
      issuer: "github",
      subject: pipeline.subject,
      kind: "pipeline",
      platform: "github",
      actor: "octocat",
      runUrl: "https://github.com/acme/web/actions/runs/99",
    });
    const view = await promotion.service.environment(pipeline, "web", "staging");
    expect(view.current).toMatchObject({ digest: D1, promotion: id });
    expect(view.history).toHaveLength(1);
    expect(await promotion.store.historyCount(id)).toBe(1);
  });

  it("waits for the soak time, then copies, verifies in the target and promotes", async () => {
    await promote(D1, "staging");
    await work();
    const id = await promote(D1, "production");
    await work();
    let p = await get(id);
    expect(p.state).toBe("waiting");
    const soak = p.gates.find((g) => g.name === "soak");
    expect(soak).toMatchObject({ status: "waiting", reason: "soaking", until: clock.now() + HOUR });
    expect(registry.copies).toBe(0);

    await clock.advance(HOUR - 1);
    await work();
    expect((await get(id)).state).toBe("waiting");

    await clock.advance(1);
    await work();
    p = await get(id);
    expect(p.state).toBe("promoted");
    expect(registry.copies).toBe(1);
    expect(registry.repos.get("reg.test/prod/web")?.has(D1)).toBe(true);
    expect(p.from).toBe("staging");
    expect(p.verification?.target).toMatchObject({ allowed: true, digest: D1 });
    // The source was verified with nothing seeded; the target with what the copy established.
    expect(verifier.seeds.find((v) => v.image === `reg.test/staging/web@${D1}`)?.copied).toBeUndefined();
    expect(verifier.seeds.find((v) => v.image === `reg.test/prod/web@${D1}`)?.copied).toEqual({
      source: "reg.test/staging/web",
      manifests: new Set([D1]),
      blobs: new Set(),
    });
  });

  it("fails a digest never promoted into `after`", async () => {
    const id = await promote(D1, "production");
    await work();
    const p = await get(id);
    expect(p.state).toBe("failed");
    expect(p.result?.reason).toBe("not_promoted_upstream");
  });

  it("waits through a recurring freeze window across a daylight-saving change, then promotes", async () => {
    await promote(D1, "staging");
    await work();
    // Friday 2026-03-27 17:00 in Berlin (16:00Z, CET): inside the window opened at 16:00 local. The
    // clocks go forward on Sunday the 29th, so Monday 08:00 local is 06:00Z (CEST), not 07:00Z.
    await clock.advance(Date.UTC(2026, 2, 27, 16) - clock.now());
    const id = await promote(D1, "frozen");
    await work();
    const p = await get(id);
    expect(p.state).toBe("waiting");
    const freeze = p.gates.find((g) => g.name === "freeze");
    expect(freeze).toMatchObject({ status: "waiting", reason: "frozen", until: Date.UTC(2026, 2, 30, 6) });
    expect(p.nextCheckAt).toBe(Date.UTC(2026, 2, 30, 6));

    await clock.advance(Date.UTC(2026, 2, 30, 6) - 1 - clock.now());
    await work();
    expect((await get(id)).state).toBe("waiting");
    await clock.advance(1);
    await work();
    expect((await get(id)).state).toBe("promoted");
  });

  it("expires a promotion that waits longer than promotion.maxWait", async () => {
    const id = await promote(D1, "locked");
    await work();
    expect((await get(id)).state).toBe("waiting");
    // The window lasts the year; maxWait is 72 h: the recheck comes at the deadline.
    expect((await get(id)).nextCheckAt).toBe(clock.now() + 72 * HOUR);
    await clock.advance(72 * HOUR - 1);
    await work();
    expect((await get(id)).state).toBe("waiting");
    await clock.advance(1);
    await work();
    const p = await get(id);
    expect(p.state).toBe("expired");
    expect(p.result?.reason).toBe("expired");
    expect(p.nextCheckAt).toBeNull();
  });

  it("supersedes an older waiting promotion when a newer one is promoted", async () => {
    await promote(D1, "staging");
    await work();
    await clock.advance(HOUR);
    await promote(D2, "staging");
    await work();
    // D2 has not soaked yet (it waits); D1 has: the newer request for D1 runs first.
    const older = await promote(D2, "production");
    await work();
    expect((await get(older)).state).toBe("waiting");
    const newer = await promote(D1, "production");
    await work();
    expect((await get(newer)).state).toBe("promoted");
    const p = await get(older);
    expect(p.state).toBe("superseded");
    expect(p.result?.reason).toBe("superseded");
  });

  it("rolls back to a digest that was current before, skipping order and soak, and refuses other rollbacks", async () => {
    await promote(D1, "staging");
    await work();
    await promote(D2, "staging");
    await work();
    const missing = promotion.service.request(pipeline, {
      app: "web",
      digest: D1,
      to: "staging",
      rollback: true,
    });
    expect(await codeOf(missing)).toBe("validation_failed");
    const never = promotion.service.request(pipeline, {
      app: "web",
      digest: D3,
      to: "staging",
      rollback: true,
      reason: "bad",
    });
    await expect(never).rejects.toMatchObject({
      code: "conflict",
      extra: { reason: "rollback_never_current" },
    });
    const current = promotion.service.request(pipeline, {
      app: "web",
      digest: D2,
      to: "staging",
      rollback: true,
      reason: "bad",
    });
    await expect(current).rejects.toMatchObject({ extra: { reason: "rollback_already_current" } });

    const id = await promote(D1, "staging", { rollback: true, reason: "D2 breaks checkout" });
    await work();
    const p = await get(id);
    expect(p.state).toBe("promoted");
    expect(p.rollback).toBe(true);
    expect(p.from).toBeNull();
    const view = await promotion.service.environment(pipeline, "web", "staging");
    expect(view.current?.digest).toBe(D1);
    expect(view.history[0]).toMatchObject({ digest: D1, rollback: true, reason: "D2 breaks checkout" });
    expect(view.history.map((h) => h.digest)).toEqual([D1, D2, D1]);
  });

  it("a rollback in `after` recalls the digest it left: promoting it onwards fails", async () => {
    await promote(D1, "staging");
    await work();
    await clock.advance(60_000);
    await promote(D2, "staging");
    await work();
    await clock.advance(60_000);
    await promote(D1, "staging", { rollback: true, reason: "D2 is broken" });
    await work();
    await clock.advance(HOUR);
    const id = await promote(D2, "production");
    await work();
    expect((await get(id)).result?.reason).toBe("recalled_upstream");
  });

  it("leaves a promotion whose registry is away for a later pass, and expires it after maxWait", async () => {
    const id = await promote(D1, "staging");
    registry.unreachable = true;
    await work();
    let p = await get(id);
    expect(p.state).toBe("pending");
    expect(p.nextCheckAt).toBeGreaterThan(clock.now());
    // Not due again yet: nothing changes.
    await work();
    expect((await get(id)).version).toBe(p.version);
    await clock.advance(72 * 3_600_000);
    await work();
    p = await get(id);
    expect(p.state).toBe("expired");
  });

  it("waits for approvals where they are configured", async () => {
    registry.put("reg.test/gated/web", D1);
    const id = await promote(D1, "gated");
    await work();
    const p = await get(id);
    expect(p.state).toBe("waiting");
    expect(p.gates.find((g) => g.name === "approvals")).toMatchObject({
      status: "waiting",
      reason: "awaiting_approvals",
    });
  });

  it("fails when the copy did not carry a verifiable signature into the target", async () => {
    await promote(D1, "staging");
    await work();
    await clock.advance(HOUR);
    verifier.denied.add(`reg.test/prod/web@${D1}`);
    const id = await promote(D1, "production");
    await work();
    const p = await get(id);
    expect(p.state).toBe("failed");
    expect(p.result?.reason).toBe("no_trusted_signature");
    expect(p.steps[0]).toMatchObject({ name: "copy", status: "failed", attempts: 1 });
    expect(p.verification?.target?.allowed).toBe(false);
    expect(await promotion.store.historyCount(id)).toBe(0);
  });

  it("retries a retryable copy failure with backoff, then succeeds", async () => {
    await promote(D1, "staging");
    await work();
    await clock.advance(HOUR);
    registry.failCopies = 1;
    const id = await promote(D1, "production");
    await promotion.worker.tick();
    // The step waits out its backoff (at most 500 ms for the first retry): move time on in small
    // steps until it has run again.
    await expect
      .poll(async () => {
        await clock.advance(100);
        return (await get(id)).state;
      })
      .toBe("promoted");
    await promotion.worker.idle();
    const p = await get(id);
    expect(p.state).toBe("promoted");
    expect(p.steps[0]).toMatchObject({ name: "copy", status: "done", attempts: 2 });
  });

  it("fails after promotion.stepRetries retries", async () => {
    await promote(D1, "staging");
    await work();
    await clock.advance(HOUR);
    registry.failCopies = 10;
    const id = await promote(D1, "production");
    await promotion.worker.tick();
    // Backoffs of at most 500 ms and 1 s: move time on in small steps until it gives up.
    await expect
      .poll(async () => {
        await clock.advance(100);
        return (await get(id)).state;
      })
      .toBe("failed");
    await promotion.worker.idle();
    const p = await get(id);
    expect(p.state).toBe("failed");
    expect(p.result?.reason).toBe("upstream_failed");
    expect(p.steps[0]).toMatchObject({ status: "failed", attempts: 3 });
  });

  it("cancels a waiting promotion, and refuses to cancel a finished one", async () => {
    await promote(D1, "staging");
    await work();
    const id = await promote(D1, "production");
    await work();
    expect((await get(id)).state).toBe("waiting");
    expect((await promotion.service.cancel(pipeline, id)).state).toBe("cancelled");
    expect(await codeOf(promotion.service.cancel(pipeline, id))).toBe("conflict");
  });

  it("refuses a digest that is not in the source repository at request time", async () => {
    const D4 = `sha256:${"4".repeat(64)}`;
    const missing = promotion.service.request(pipeline, { app: "web", digest: D4, to: "production" });
    await expect(missing).rejects.toMatchObject({ code: "not_found", extra: { reason: "source_missing" } });
  });

  it("answers a repeated request with the unfinished promotion, and an Idempotency-Key with its first request", async () => {
    const a = await promotion.service.request(pipeline, { app: "web", digest: D1, to: "staging" }, "k1");
    const b = await promotion.service.request(pipeline, { app: "web", digest: D1, to: "staging" }, "k1");
    const c = await promotion.service.request(pipeline, { app: "web", digest: D1, to: "staging" });
    expect(a.created).toBe(true);
    expect([b.created, c.created]).toEqual([false, false]);
    expect(new Set([a.promotion.id, b.promotion.id, c.promotion.id]).size).toBe(1);
    const other = promotion.service.request(pipeline, { app: "web", digest: D2, to: "staging" }, "k1");
    expect(await codeOf(other)).toBe("idempotency_key_reused");
    await work();
    // Finished: the same key and body still answer with it, without a new promotion.
    const again = await promotion.service.request(pipeline, { app: "web", digest: D1, to: "staging" }, "k1");
    expect(again).toMatchObject({ created: false, promotion: { id: a.promotion.id, state: "promoted" } });
  });

  it("a worker whose lease was taken over cannot record: its fenced writes change nothing", async () => {
    const id = await promote(D1, "staging");
    const name = pairLease("web", "staging");
    const stale = await store.leases.acquire(name, "stale-worker", 1_000);
    await clock.advance(1_000);
    const fresh = await store.leases.acquire(name, "new-worker", 60_000);
    expect(fresh?.fence).toBe((stale?.fence ?? 0) + 1);
    // The stale worker's handle, as withLease builds it: writes conditioned on its old fence.
    const lease = { name, holder: "stale-worker", fence: stale!.fence };
    const handle: HeldLease = {
      ...lease,
      held: () => store.leases.held(lease),
      fenced: async (write) => {
        const q = write as unknown as {
          where(c: unknown): { executeTakeFirst(): Promise<{ numUpdatedRows: bigint }> };
        };
        return Number((await q.where(store.leases.held(lease)).executeTakeFirst()).numUpdatedRows) > 0;
      },
    };
    await expect(
      promotion.engine.process("web", "staging", handle, new AbortController().signal),
    ).rejects.toBeInstanceOf(LeaseLostError);
    const p = await get(id);
    expect(p.state).toBe("pending");
    expect(p.version).toBe(1);

    // The same at the record step: running, copy done, record next.
    const steps = p.steps.map((st) =>
      st.name === "copy" ? { ...st, status: "done" as const, attempts: 1 } : st,
    );
    const running = await promotion.store.update(p, { state: "running", steps }, clock.now());
    await expect(
      promotion.engine.process("web", "staging", handle, new AbortController().signal),
    ).rejects.toBeInstanceOf(LeaseLostError);
    const after = await get(id);
    expect(after).toMatchObject({ state: "running", version: running!.version });
    expect(await promotion.store.historyCount(id)).toBe(0);
    expect((await promotion.service.environment(pipeline, "web", "staging")).current).toBeUndefined();
  });
});
