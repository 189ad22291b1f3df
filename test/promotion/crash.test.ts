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
import { MANIFEST_ACCEPT, registryFetch, startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

let source: TestRegistry;
let target: TestRegistry;
let proxy: FaultProxy;
let github: OidcIssuer;
let postgres: TestPostgres;
let signed: SignedImage;
let work: string;
const running: ServeProcess[] = [];

beforeAll(async () => {
  [source, target, github, postgres] = await Promise.all([
    startRegistry({ auth: "htpasswd" }),
    startRegistry({ auth: "htpasswd" }),
    startOidcIssuer(),
    startPostgres(),
  ]);
  proxy = await startFaultProxy(target.url);
  work = mkdtempSync(path.join(tmpdir(), "ferry-promotion-crash-"));
  signed = await pushSignedImage(source, "staging/web", work, { layerSize: 256 * 1024 });
});

afterAll(async () => {
  for (const p of running) p.child.kill("SIGKILL");
  await Promise.all([source?.stop(), target?.stop(), proxy?.stop(), github?.stop(), postgres?.stop()]);
});

/** A config for `ferry serve` whose target registry is reached through the fault proxy. */
function config(store: Record<string, unknown>, app: string) {
  const require = { signature: { authorities: ["ci"] } };
  return {
    store,
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
    apps: [
      {
        name: "web",
        images: { staging: `${source.host}/staging/web`, production: `${proxy.host}/${app}/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    promotion: { pollInterval: "200ms", leaseTtl: "2s" },
  };
}

async function start(file: string, url: string): Promise<ServeProcess> {
  const p = await serve(file, url);
  running.push(p);
  return p;
}

/** Manifest PUTs of the promoted digest that reached the target (through the proxy). */
function manifestPuts(app: string): number {
  return proxy.count(
    (r) => r.method === "PUT" && r.path === `/v2/${app}/web/manifests/${signed.digest}` && r.status === 201,
  );
}

async function targetHas(app: string): Promise<number> {
  const res = await registryFetch(target, `/v2/${app}/web/manifests/${signed.digest}`, {
    method: "HEAD",
    headers: { accept: MANIFEST_ACCEPT },
  });
  return res.status;
}

describe("a promotion survives SIGKILL of ferry serve", () => {
  it("mid-copy (a stalled blob upload): after a restart it finishes exactly once (SQLite)", async () => {
    const dir = mkdtempSync(path.join(work, "sqlite-"));
    const { file, url } = await writeServeConfig(dir, config({ sqlite: "./ferry.db" }, "midcopy"));
    let ferry = await start(file, url);
    const api = client(github, () => ferry.url);
    const staged = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: signed.digest,
      to: "staging",
    });
    expect((await api.until(staged.json.id, isFinished)).state).toBe("promoted");

    // The upload of the image's own layer into the target never gets an answer: the copy hangs
    // mid-way, before the image manifest can be pushed (the signatures, copied beside the image,
    // may finish meanwhile: they are not what this stalls).
    const layer = signed.image.manifests[0]!.layerDigests[0]!;
    proxy.addFault({
      match: (r) =>
        (r.method === "PUT" || r.method === "PATCH") &&
        r.path.startsWith("/v2/midcopy/web/blobs/uploads/") &&
        r.path.includes(layer.slice("sha256:".length)),
      action: { kind: "stall" },
      times: 1,
    });
    const asked = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: signed.digest,
      to: "production",
    });
    expect(asked.status).toBe(201);
    const id = asked.json.id as string;
    await expect.poll(() => proxy.count((r) => r.faulted), { timeout: 30_000 }).toBe(1);
    const during = await api.call("GET", `/v1/promotions/${id}`);
    expect(during.json.state).toBe("running");
    expect(during.json.steps[0]).toMatchObject({ name: "copy", status: "running", attempts: 1 });
    expect(manifestPuts("midcopy")).toBe(0);

    const killed = await ferry.kill();
    expect(killed.signal).toBe("SIGKILL");
    proxy.clearFaults();
    ferry = await start(file, url);
    const done = await api.until(id, isFinished);
    expect(done.state).toBe("promoted");
    expect(done.steps[0]).toMatchObject({ name: "copy", status: "done", attempts: 2 });
    const env = await api.call("GET", "/v1/apps/web/environments/production");
    expect(env.json.history).toHaveLength(1);
    expect(env.json.current).toMatchObject({ digest: signed.digest, promotion: id });
    expect(await targetHas("midcopy")).toBe(200);
    expect(manifestPuts("midcopy")).toBe(1);
    await ferry.kill();
  });

  it("between copy and record (record's insert held by a table lock): after a restart it records once (PostgreSQL)", async () => {
    const dir = mkdtempSync(path.join(work, "pg-"));
    const database = await postgres.createDatabase("ferry_crash_record");
    const { file, url } = await writeServeConfig(dir, config({ postgres: database }, "record"));
    let ferry = await start(file, url);
    const api = client(github, () => ferry.url);
    const staged = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: signed.digest,
      to: "staging",
    });
    expect((await api.until(staged.json.id, isFinished)).state).toBe("promoted");

    // A transaction of the test holds a lock that lets reads through but blocks every insert into
    // the history, so `record` (which writes it in the same transaction as the state) waits.
    const locker = new pg.Client({ connectionString: database });
    await locker.connect();
    await locker.query("begin");
    await locker.query("lock table environment_history in share mode");
    try {
      const asked = await api.call("POST", "/v1/promotions", {
        app: "web",
        digest: signed.digest,
        to: "production",
      });
      const id = asked.json.id as string;
      const watcher = new pg.Client({ connectionString: database });
      await watcher.connect();
      await expect
        .poll(
          async () =>
            (
              await watcher.query(
                "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query ilike 'insert into \"environment_history\"%'",
              )
            ).rows[0].n,
          { timeout: 30_000 },
        )
        .toBe(1);
      await watcher.end();
      const during = await api.call("GET", `/v1/promotions/${id}`);
      // copy, gitops, evidence (the summary attached), record (held by the lock).
      expect(during.json.steps.map((s: { status: string }) => s.status)).toEqual([
        "done",
        "skipped",
        "done",
        "running",
      ]);
      expect(await targetHas("record")).toBe(200);

      const killed = await ferry.kill();
      expect(killed.signal).toBe("SIGKILL");
      await locker.query("rollback");
      ferry = await start(file, url);
      const done = await api.until(id, isFinished);
      expect(done.state).toBe("promoted");
      expect(done.steps.find((s: { name: string }) => s.name === "record")).toMatchObject({
        name: "record",
        status: "done",
        attempts: 2,
      });
      expect(done.steps[0]).toMatchObject({ name: "copy", status: "done", attempts: 1 });
      const env = await api.call("GET", "/v1/apps/web/environments/production");
      expect(env.json.history).toHaveLength(1);
      expect(env.json.current).toMatchObject({ digest: signed.digest, promotion: id });
      expect(manifestPuts("record")).toBe(1);
    } finally {
      await locker.end();
    }
    await ferry.kill();
  });
});
