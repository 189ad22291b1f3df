import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { createLogger } from "../../src/common/logger.ts";
import { parseConfigText } from "../../src/config/load.ts";
import type { PipelinePrincipal } from "../../src/identity/principal.ts";
import { compileTrustPolicies } from "../../src/identity/trust-policies.ts";
import { createPromotion, type Promotion } from "../../src/promotion/create.ts";
import type { PromotionRegistry, PromotionVerifier } from "../../src/promotion/ports.ts";
import type { PromotionRecord, StepRecord } from "../../src/promotion/record.ts";
import { StepFailure, type StepOutcome, type StepRunner } from "../../src/promotion/step-runner.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { decide } from "../../src/verify/report.ts";

const D1 = `sha256:${"1".repeat(64)}`;
const CONFIG = `
store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
issuers:
  - { name: github, url: "https://token.actions.githubusercontent.com", audience: ferry }
environments:
  - name: staging
  - name: other
apps:
  - name: web
    images: { staging: reg.test/staging/web, other: reg.test/other/web }
    pipelines:
      - { issuer: github, claims: { repository_id: "74" } }
promotion: { stepRetries: 1 }
`;

const registry: PromotionRegistry = {
  exists: async () => true,
  copy: async () => undefined,
};
const verifier: PromotionVerifier = {
  verify: async (image, environment) =>
    decide(image.slice(image.indexOf("@") + 1), environment, [
      { name: "signature", passed: true, reason: "verified", message: "m" },
    ]),
  policyHash: (environment) => `hash-of-${environment}`,
};
const pipeline: PipelinePrincipal = {
  kind: "pipeline",
  via: "oidc",
  issuer: { name: "github", url: "https://token.actions.githubusercontent.com", platform: "github" },
  subject: "repo:acme/web:ref:refs/heads/main",
  claims: { repository_id: "74", actor: "octocat", repository: "acme/web", run_id: "99" },
  tokenSha256: "0".repeat(64),
};

/** A gitops runner that plays a script of outcomes and records what it was given. */
class ScriptedRunner implements StepRunner {
  readonly seen: { step: StepRecord; attempt: number }[] = [];
  readonly script: (() => StepOutcome)[];
  constructor(script: (() => StepOutcome)[]) {
    this.script = script;
  }
  configured(_app: string, environment: string) {
    return environment === "staging";
  }
  async run(_p: PromotionRecord, step: StepRecord, context: { attempt: number }) {
    this.seen.push({ step: structuredClone(step), attempt: context.attempt });
    const next = this.script.shift();
    if (next === undefined) throw new Error("the script ran out");
    return next();
  }
}

let clock: FakeClock;
let store: Store;
let promotion: Promotion;
let runner: ScriptedRunner;
let events: string[];
let written: string[];

async function setUp(script: (() => StepOutcome)[]) {
  runner = new ScriptedRunner(script);
  const { config } = parseConfigText(CONFIG, "/etc/ferry/ferry.yaml", {});
  promotion = createPromotion({
    config,
    appPipelines: compileTrustPolicies(config).apps,
    store,
    registry,
    verifier,
    clock,
    logger: createLogger("error", new Writable({ write: (_c, _e, done) => done() })),
    steps: { gitops: runner },
  });
  events = [];
  written = [];
  promotion.store.onChange((after, before) => events.push(`${before?.state ?? "new"}>${after.state}`));
  promotion.store.onWrite(async (tx, after, before) => {
    // Runs inside the change's transaction: the row it sees is the new version.
    const row = await tx
      .selectFrom("promotions")
      .select("version")
      .where("id", "=", after.id)
      .executeTakeFirst();
    expect(Number(row?.version)).toBe(after.version);
    written.push(`${before?.state ?? "new"}>${after.state}`);
  });
}

beforeEach(async () => {
  clock = new FakeClock(Date.UTC(2026, 2, 20, 10));
  store = await openStore(
    { sqlite: path.join(mkdtempSync(path.join(tmpdir(), "ferry-steps-")), "ferry.db") },
    { clock },
  );
});

afterEach(async () => {
  await promotion.close();
  await store.close();
});

async function work() {
  await promotion.worker.tick();
  await promotion.worker.idle();
}

const request = async (to: string) =>
  (await promotion.service.request(pipeline, { app: "web", digest: D1, to })).promotion.id;

describe("optional step runners", () => {
  it("plan the step where configured, keep the promotion running while it waits, and keep its data", async () => {
    await setUp([
      () => ({
        status: "waiting",
        recheckAt: clock.now() + 60_000,
        reason: "awaiting_merge",
        message: "pull request 7 is open",
        data: { pullRequest: 7 },
      }),
      () => ({ status: "done", message: "merged", data: { pullRequest: 7, merged: true } }),
    ]);
    const other = await request("other");
    const id = await request("staging");
    expect((await promotion.service.get(pipeline, id)).steps[1]?.status).toBe("pending");
    await work();
    expect((await promotion.service.get(pipeline, other)).steps[1]?.status).toBe("skipped");
    let p = await promotion.service.get(pipeline, id);
    expect(p.state).toBe("running");
    expect(p.steps[1]).toMatchObject({
      status: "waiting",
      reason: "awaiting_merge",
      data: { pullRequest: 7 },
      attempts: 1,
    });
    // Not due yet: the runner is not asked again.
    await work();
    expect(runner.seen).toHaveLength(1);

    await clock.advance(60_000);
    await work();
    p = await promotion.service.get(pipeline, id);
    expect(p.state).toBe("promoted");
    expect(p.steps[1]).toMatchObject({ status: "done", message: "merged", data: { merged: true } });
    expect(p.steps[1]?.reason).toBeUndefined();
    // The second run saw the first run's data, and looking again was not a new attempt.
    expect(runner.seen[1]).toMatchObject({
      step: { status: "waiting", data: { pullRequest: 7 } },
      attempt: 1,
    });
    expect(events[0]).toBe("new>pending");
    expect(events.at(-1)).toBe("running>promoted");
    // Write hooks see every change the listeners see, in the same order.
    expect(written).toEqual(events);
  });

  it("fail the promotion with a step failure's reason", async () => {
    await setUp([
      () => {
        throw new StepFailure("gitops_path_missing", "images[name=web] is not in kustomization.yaml");
      },
    ]);
    const id = await request("staging");
    await work();
    const p = await promotion.service.get(pipeline, id);
    expect(p.state).toBe("failed");
    expect(p.result?.reason).toBe("gitops_path_missing");
    expect(p.steps[1]).toMatchObject({ status: "failed", reason: "gitops_path_missing" });
    expect(events).toContain("running>failed");
  });
});
