import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { FerryError } from "../../src/common/errors.ts";
import { createLogger } from "../../src/common/logger.ts";
import type { CompiledPolicy } from "../../src/identity/policy.ts";
import type { Principal } from "../../src/identity/principal.ts";
import { OciLayout } from "../../src/registry/layout.ts";
import type { ArtifactWriter } from "../../src/registry/ports.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { storeSigningRecords } from "../../src/signing/records.ts";
import { SigningService } from "../../src/signing/service.ts";
import { keySigner } from "../../src/signing/signer.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { buildImageLayout } from "../support/images.ts";

const REPO = "registry.test/team/web";
const LEASE = { ttl: 1_000, renewEvery: 300, wait: 0 };
const signer = keySigner(parseSigningKey(generateSigningKeyPem(), "test"));
const principal: Principal = {
  kind: "pipeline",
  via: "oidc",
  issuer: { name: "github", url: "https://token.actions.githubusercontent.com", platform: "github" },
  subject: "repo:acme/web:ref:refs/heads/main",
  claims: { repository_id: "74" },
  tokenSha256: "ab".repeat(32),
};
/** The app's pipelines policy, matching every pipeline (the policy is not what is tested here). */
const anyPipeline: CompiledPolicy = {
  name: "app web",
  rules: [],
  match: () => 0,
  evaluate: () => ({ allowed: true, rules: [] }) as unknown as ReturnType<CompiledPolicy["evaluate"]>,
};

let clock: FakeClock;
let store: Store;
let layout: OciLayout;
let digest: string;
let logs: string[];

beforeEach(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-signing-lease-"));
  clock = new FakeClock();
  store = await openStore({ sqlite: path.join(dir, "ferry.db") }, { clock });
  digest = (await buildImageLayout(path.join(dir, "layout"), {})).digest;
  layout = await OciLayout.open(path.join(dir, "layout"));
  logs = [];
});
afterEach(async () => {
  await store.close();
});

/**
 * A signing service over the layout, whose registry writes run `onManifest` after each manifest
 * is stored, with the lease's signal at hand.
 */
function service(onManifest: (signal: AbortSignal, count: number) => Promise<void>): SigningService {
  let signal: AbortSignal | undefined;
  let manifests = 0;
  const writer = new Proxy(layout, {
    get(target, property) {
      if (property === "putManifest") {
        return async (...args: Parameters<ArtifactWriter["putManifest"]>) => {
          const result = await target.putManifest(...args);
          await onManifest(signal!, ++manifests);
          return result;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as ArtifactWriter;
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  return new SigningService({
    apps: [{ name: "web", images: { staging: REPO } }],
    appPolicies: new Map([["web", anyPipeline]]),
    writerFor: () => writer,
    signer,
    records: storeSigningRecords(store, clock),
    withLease: (name, options, fn) =>
      store.withLease(name, options, (lease, s) => {
        signal = s;
        return fn(lease, s);
      }),
    lease: LEASE,
    logger: createLogger("info", sink),
    maxPredicateBytes: 64 * 1024,
    maxAttestations: 4,
    annotate: false,
    clock,
  });
}

const rows = () => store.db.selectFrom("signings").selectAll().orderBy("id").execute();

describe("signing under a renewed lease", () => {
  it("registry work that takes several TTLs keeps the lease and is recorded in full", async () => {
    const signing = service(async () => {
      // Each registry write takes 1.2 TTLs of (fake) time, the renewal running meanwhile.
      for (let i = 0; i < 4; i++) {
        await clock.whenSleeping(1);
        await clock.advance(LEASE.renewEvery);
      }
    });
    const result = await signing.sign(principal, { image: `${REPO}@${digest}`, attestations: [] }, "req-1");
    expect(result.items.map((i) => `${i.kind} ${i.format} ${i.status}`)).toEqual([
      "signature cosign-legacy created",
      "signature sigstore-bundle created",
    ]);
    const recorded = await rows();
    expect(recorded.map((r) => [r.format, r.status]).sort()).toEqual([
      ["cosign-legacy", "created"],
      ["sigstore-bundle", "created"],
    ]);
    for (const r of recorded) expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/);
    expect(await store.leases.holder(`sign:${REPO}@${digest}`)).toBeUndefined();
  });

  it("a signing that stalls past the lease TTL stops before its next registry write and records nothing", async () => {
    const signing = service(async (signal, count) => {
      if (count > 1) return;
      // The process stalls after its first write; when it wakes, the renewal finds the lease expired.
      await clock.whenSleeping(1);
      await clock.jump(LEASE.ttl + 500);
      if (!signal.aborted) await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    });
    const refused = await signing
      .sign(principal, { image: `${REPO}@${digest}`, attestations: [] }, "req-2")
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).toBeInstanceOf(FerryError);
    expect((refused as FerryError).code).toBe("conflict");
    expect((refused as FerryError).message).toBe(
      `signing ${REPO}@${digest} was interrupted (another request took it over); try again`,
    );
    // The `.sig` written before the stall stays; the bundle referrer after it was never written.
    const tags = await layout.listTags();
    expect(tags).toContain(`${digest.replace(":", "-")}.sig`);
    expect(await layout.listReferrers(digest)).toEqual([]);
    expect(await rows()).toEqual([]);
    expect(logs.join("")).toContain("signing stopped: its lease was lost");
  });

  it("a digest another request is signing is a 409 naming the image, not the lease", async () => {
    expect(await store.leases.acquire(`sign:${REPO}@${digest}`, "other-replica", 60_000)).toBeDefined();
    const signing = service(async () => {});
    await expect(
      signing.sign(principal, { image: `${REPO}@${digest}`, attestations: [] }, "req-3"),
    ).rejects.toMatchObject({
      code: "conflict",
      message: `another request is signing ${REPO}@${digest}; try again`,
    });
    expect(await layout.listTags()).not.toContain(`${digest.replace(":", "-")}.sig`);
  });
});
