import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import {
  AUD,
  client,
  isFinished,
  type ServeProcess,
  serve,
  writeServeConfig,
} from "../support/ferry-serve.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startPostgres, type TestPostgres } from "../support/postgres.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const APPS = Array.from({ length: 50 }, (_, i) => `app-${i}`);
const KILL_APPS = ["kill-0", "kill-1", "kill-2"];

let source: TestRegistry;
let target: TestRegistry;
let proxy: FaultProxy;
let github: OidcIssuer;
let postgres: TestPostgres;
let signed: SignedImage;
let database: string;
let files: { file: string; url: string }[];
const running: ServeProcess[] = [];

beforeAll(async () => {
  [source, target, github, postgres] = await Promise.all([
    startRegistry({ auth: "htpasswd" }),
    startRegistry({ auth: "htpasswd" }),
    startOidcIssuer(),
    startPostgres(),
  ]);
  proxy = await startFaultProxy(target.url);
  const work = mkdtempSync(path.join(tmpdir(), "ferry-promotion-replicas-"));
  // Every app's staging repository is this one: it holds the signed digest they all promote.
  signed = await pushSignedImage(source, "base/web", work, { bundle: false });
  const all = [...APPS, ...KILL_APPS];
  database = await postgres.createDatabase("ferry_replicas");
  const require = { signature: { authorities: ["ci"] } };
  const config = {
    store: { postgres: database },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [
      { url: source.url, auth: { username: source.username, password: source.password } },
      { url: proxy.url, auth: { username: target.username, password: target.password } },
    ],
    trust: { authorities: [{ name: "ci", key: signed.keys.publicKeyPath }] },
    environments: [
      { name: "staging", require },
      { name: "production", after: "staging", require },
    ],
    apps: all.map((app) => ({
      name: app,
      images: { staging: `${source.host}/base/web`, production: `${proxy.host}/p/${app}` },
      pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
    })),
    promotion: { pollInterval: "200ms", leaseTtl: "2s" },
  };
  files = [
    await writeServeConfig(work, config, "replica-a.yaml"),
    await writeServeConfig(work, config, "replica-b.yaml"),
  ];
});

afterAll(async () => {
  for (const p of running) p.child.kill("SIGKILL");
  await Promise.all([source?.stop(), target?.stop(), proxy?.stop(), github?.stop(), postgres?.stop()]);
});

async function start(i: 0 | 1): Promise<ServeProcess> {
  const p = await serve(files[i]!.file, files[i]!.url);
  running.push(p);
  return p;
}

async function historyCounts(): Promise<Map<string, number>> {
  const db = new pg.Client({ connectionString: database });
  await db.connect();
  try {
    const { rows } = await db.query(
      "select app, environment, count(*)::int as n from environment_history group by app, environment",
    );
    return new Map(rows.map((r) => [`${r.app}/${r.environment}`, r.n as number]));
  } finally {
    await db.end();
  }
}

describe("two ferry serve replicas on one PostgreSQL", () => {
  it("after SIGKILL of the replica running promotions, the other finishes them once its leases expire", async () => {
    let a = await start(0);
    const api = client(github, () => a.url);
    for (const app of KILL_APPS) {
      const staged = await api.call("POST", "/v1/promotions", { app, digest: signed.digest, to: "staging" });
      expect((await api.until(staged.json.id, isFinished)).state).toBe("promoted");
    }
    // Every blob upload into the target hangs: replica A's copies stall mid-way.
    proxy.addFault({
      match: (r) => (r.method === "PUT" || r.method === "PATCH") && r.path.startsWith("/v2/p/kill-"),
      action: { kind: "stall" },
    });
    const ids: string[] = [];
    for (const app of KILL_APPS) {
      const asked = await api.call("POST", "/v1/promotions", {
        app,
        digest: signed.digest,
        to: "production",
      });
      expect(asked.status).toBe(201);
      ids.push(asked.json.id);
    }
    await expect
      .poll(() => new Set(proxy.requests.filter((r) => r.faulted).map((r) => r.path.split("/")[3])).size, {
        timeout: 30_000,
      })
      .toBe(KILL_APPS.length);

    const b = await start(1);
    const other = client(github, () => b.url);
    await a.kill();
    proxy.clearFaults();
    for (const id of ids) {
      const done = await other.until(id, isFinished);
      expect(done.state, JSON.stringify(done.result)).toBe("promoted");
      expect(done.steps[0]).toMatchObject({ name: "copy", status: "done", attempts: 2 });
      expect(done.steps.find((s: { name: string }) => s.name === "record")).toMatchObject({
        name: "record",
        status: "done",
        attempts: 1,
      });
    }
    const counts = await historyCounts();
    for (const app of KILL_APPS) expect(counts.get(`${app}/production`)).toBe(1);

    // Both replicas up: 50 promotions of distinct apps, half asked of each, each run exactly once.
    a = await start(0);
    const apis = [api, other];
    // The same request with one Idempotency-Key, twenty times at once across both replicas: one promotion.
    const same = { app: "kill-0", digest: signed.digest, to: "staging", reason: "again" };
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        apis[i % 2]!.call("POST", "/v1/promotions", same, { "idempotency-key": "replay-of-run-7" }),
      ),
    );
    expect(burst.filter((r) => r.status === 201)).toHaveLength(1);
    expect(burst.filter((r) => r.status === 200)).toHaveLength(19);
    expect(new Set(burst.map((r) => r.json.id)).size).toBe(1);
    expect((await api.until(burst[0]!.json.id, isFinished)).state).toBe("promoted");

    const asked = await Promise.all(
      APPS.map((app, i) =>
        apis[i % 2]!.call("POST", "/v1/promotions", { app, digest: signed.digest, to: "staging" }),
      ),
    );
    expect(asked.map((r) => r.status)).toEqual(APPS.map(() => 201));
    const finished = await Promise.all(asked.map((r, i) => apis[(i + 1) % 2]!.until(r.json.id, isFinished)));
    for (const p of finished) {
      expect(p.state, JSON.stringify(p.result)).toBe("promoted");
      // copy, gitops (skipped), evidence, record: each once.
      expect(p.steps.map((s: { attempts: number }) => s.attempts)).toEqual([1, 0, 1, 1]);
    }
    const after = await historyCounts();
    for (const app of APPS) expect(after.get(`${app}/staging`)).toBe(1);
    expect([...after.values()].reduce((x, y) => x + y, 0)).toBe(APPS.length + 2 * KILL_APPS.length + 1);
    await Promise.all([a.kill(), b.kill()]);
    // Every promotion attaches a verification summary: here 53 of them to one digest in the one
    // staging repository all the apps share, one after another per replica (about 16 s without them,
    // 45-50 s with them on this machine), hence more than the default minute.
  }, 120_000);
});
