import { Writable } from "node:stream";
import { Registry } from "prom-client";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { systemClock } from "../../src/common/clock.ts";
import { newRecordId } from "../../src/common/ids.ts";
import { createLogger } from "../../src/common/logger.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { createNotifications, type Notifications } from "../../src/notifications/create.ts";
import type { PromotionRecord } from "../../src/promotion/record.ts";
import { PromotionStore } from "../../src/promotion/store.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { storeEngines } from "../support/store.ts";
import { type Answer, startReceiver, type TestReceiver } from "./receiver.ts";

const SECRET = `whsec_${Buffer.alloc(32, 3).toString("base64")}`;
const DIGEST = `sha256:${"cd".repeat(32)}`;

function record(over: Partial<PromotionRecord> = {}): PromotionRecord {
  const now = Date.now();
  return {
    id: newRecordId(),
    app: "web",
    environment: "production",
    digest: DIGEST,
    from: "staging",
    sourceRepository: "127.0.0.1:5000/staging/web",
    targetRepository: "127.0.0.1:5000/prod/web",
    state: "pending",
    version: 1,
    rollback: false,
    requestedBy: { issuer: "github", subject: "repo:acme/web", kind: "pipeline" },
    requestHash: "0".repeat(64),
    createdAt: now,
    updatedAt: now,
    nextCheckAt: now,
    gates: [],
    steps: [],
    ...over,
  };
}

interface Harness {
  store: Store;
  promotions: PromotionStore;
  notifications: Notifications;
  metrics: Registry;
  logs(): Record<string, unknown>[];
  logText(): string;
}

const open: Harness[] = [];
const receivers: TestReceiver[] = [];

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.notifications.worker.stop();
    await h.store.close();
  }
  for (const r of receivers.splice(0)) await r.stop();
});

async function receiver(answer?: Answer): Promise<TestReceiver> {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

describe.each(storeEngines("notify"))("the notification outbox (%s)", (_engine, freshSpec) => {
  async function harness(notifications: Record<string, unknown>[]): Promise<Harness> {
    const { config } = parseConfigText(
      stringify({
        store: { sqlite: "./x.db" },
        keys: { signing: "./k.pem" },
        server: { listen: "127.0.0.1:0", publicUrl: "https://ferry.test" },
        promotion: { pollInterval: "100ms", leaseTtl: "3s" },
        notifications,
      }),
      "/tmp/ferry.yaml",
      {},
    );
    const store = await openStore(await freshSpec());
    const promotions = new PromotionStore(store);
    const chunks: string[] = [];
    const logger = createLogger(
      "info",
      new Writable({
        write(chunk, _enc, done) {
          chunks.push(String(chunk));
          done();
        },
      }),
    );
    const metrics = new Registry();
    const made = createNotifications({ config, store, promotions, clock: systemClock, logger, metrics });
    const h: Harness = {
      store,
      promotions,
      notifications: made,
      metrics,
      logText: () => chunks.join(""),
      logs: () =>
        chunks
          .join("")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
    };
    open.push(h);
    return h;
  }

  const standard = (url: string, over: Record<string, unknown> = {}) => ({
    name: "hooks",
    url,
    events: ["promoted", "failed"],
    secret: SECRET,
    retry: { initialDelay: "10ms", maxDelay: "40ms" },
    ...over,
  });

  it("queues one entry per (event, subscribed receiver) with the change that causes it", async () => {
    const h = await harness([
      standard("https://hooks.example.com/a"),
      { name: "chat", url: "https://chat.example.com/b", events: ["promoted"], format: "slack" },
      { name: "ops", url: "https://ops.example.com/c", events: ["failed"], secret: SECRET },
    ]);
    const { promotion } = await h.promotions.insert(record(), undefined);
    expect(await h.notifications.outbox.forPromotion(promotion.id)).toEqual([]);
    const running = await h.promotions.update(promotion, { state: "running" }, Date.now());
    expect(await h.notifications.outbox.forPromotion(promotion.id)).toEqual([]);
    await h.promotions.update(running!, { state: "promoted", nextCheckAt: null }, Date.now());
    const entries = await h.notifications.outbox.forPromotion(promotion.id);
    expect(entries.map((e) => [e.receiver, e.event, e.format, e.state, e.attempts]).sort()).toEqual([
      ["chat", "promoted", "slack", "pending", 0],
      ["hooks", "promoted", "standard", "pending", 0],
    ]);
    expect(JSON.parse(entries.find((e) => e.receiver === "chat")!.body)).toHaveProperty("text");
    expect(JSON.parse(entries.find((e) => e.receiver === "hooks")!.body)).toMatchObject({
      type: "ferry.promotion.promoted",
      data: { id: promotion.id, state: "promoted", url: `https://ferry.test/v1/promotions/${promotion.id}` },
    });
  });

  it("queues nothing for a change that rolls back", async () => {
    const h = await harness([standard("https://hooks.example.com/a")]);
    const { promotion } = await h.promotions.insert(record({ state: "running" }), undefined);
    // A later hook fails: the whole change, the outbox's insert included, is undone.
    h.promotions.onWrite(async () => {
      throw new Error("the audit log is away");
    });
    await expect(h.promotions.update(promotion, { state: "promoted" }, Date.now())).rejects.toThrow("away");
    expect((await h.promotions.get(promotion.id))!.state).toBe("running");
    expect(await h.notifications.outbox.forPromotion(promotion.id)).toEqual([]);
  });

  it("retries a failing receiver with the same webhook-id, and marks it delivered only after a 2xx", async () => {
    const r = await receiver((n) => ({ status: n < 2 ? 500 : 200 }));
    const h = await harness([standard(r.url)]);
    const { promotion } = await h.promotions.insert(record({ state: "running" }), undefined);
    await h.promotions.update(promotion, { state: "failed", nextCheckAt: null }, Date.now());
    h.notifications.worker.start();
    await expect
      .poll(async () => (await h.notifications.outbox.forPromotion(promotion.id))[0]?.state)
      .toBe("delivered");
    const [entry] = await h.notifications.outbox.forPromotion(promotion.id);
    expect(entry).toMatchObject({ attempts: 3, lastOutcome: "http_200" });
    expect(r.received).toHaveLength(3);
    expect(new Set(r.received.map((q) => q.headers["webhook-id"]))).toEqual(new Set([entry!.id]));
    for (const q of r.received) {
      expect(q.body).toBe(entry!.body);
      expect(new Webhook(SECRET).verify(q.body, q.headers)).toMatchObject({ type: "ferry.promotion.failed" });
    }
    const attempts = h.logs().filter((l) => l.delivery === entry!.id);
    expect(attempts.map((l) => [l.level, l.attempt, l.status, l.receiver, l.event])).toEqual([
      ["warn", 1, 500, "hooks", "failed"],
      ["warn", 2, 500, "hooks", "failed"],
      ["info", 3, 200, "hooks", "failed"],
    ]);
    expect(h.logText()).not.toContain(SECRET);
    expect(h.logText()).not.toContain(SECRET.slice("whsec_".length));
    expect(h.logText()).not.toContain(r.url);
    const metrics = await h.metrics.getMetricsAsJSON();
    const total = metrics.find((m) => m.name === "ferry_notification_deliveries_total")!;
    expect(total.values.map((v) => [v.labels.outcome, v.value]).sort()).toEqual([
      ["delivered", 1],
      ["failed", 2],
    ]);
    expect(metrics.find((m) => m.name === "ferry_notification_outbox_pending")!.values[0]!.value).toBe(0);
  });

  it("gives up after maxAttempts: dead, logged at error, counted", async () => {
    const r = await receiver(() => ({ status: 503 }));
    const h = await harness([
      standard(r.url, { retry: { maxAttempts: 3, initialDelay: "10ms", maxDelay: "20ms" } }),
    ]);
    const { promotion } = await h.promotions.insert(record({ state: "running" }), undefined);
    await h.promotions.update(promotion, { state: "promoted" }, Date.now());
    h.notifications.worker.start();
    await expect
      .poll(async () => (await h.notifications.outbox.forPromotion(promotion.id))[0]?.state)
      .toBe("dead");
    expect((await h.notifications.outbox.forPromotion(promotion.id))[0]).toMatchObject({
      attempts: 3,
      lastOutcome: "http_503",
    });
    expect(r.received).toHaveLength(3);
    const given = h.logs().filter((l) => l.msg === "notification delivery given up");
    expect(given).toMatchObject([
      { level: "error", attempt: 3, status: 503, receiver: "hooks", event: "promoted" },
    ]);
  });

  it("gives up a 4xx refusal at once, and does not follow a redirect (a failed attempt)", async () => {
    const elsewhere = await receiver();
    const refusing = await receiver(() => ({ status: 404 }));
    const redirecting = await receiver(() => ({ status: 302, headers: { location: elsewhere.url } }));
    const h = await harness([
      standard(refusing.url, { name: "refusing" }),
      standard(redirecting.url, { name: "redirecting", retry: { maxAttempts: 2, initialDelay: "10ms" } }),
    ]);
    const { promotion } = await h.promotions.insert(record({ state: "running" }), undefined);
    await h.promotions.update(promotion, { state: "promoted" }, Date.now());
    h.notifications.worker.start();
    await expect
      .poll(async () => (await h.notifications.outbox.forPromotion(promotion.id)).map((e) => e.state))
      .toEqual(["dead", "dead"]);
    const entries = await h.notifications.outbox.forPromotion(promotion.id);
    expect(Object.fromEntries(entries.map((e) => [e.receiver, [e.attempts, e.lastOutcome]]))).toEqual({
      refusing: [1, "http_404"],
      redirecting: [2, "redirect"],
    });
    expect(refusing.received).toHaveLength(1);
    expect(redirecting.received).toHaveLength(2);
    expect(elsewhere.received).toHaveLength(0);
  });

  it("counts a receiver that does not answer within its timeout as a failed attempt", async () => {
    // A server that accepts and never answers.
    const { createServer } = await import("node:net");
    const sockets: import("node:net").Socket[] = [];
    const hang = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => hang.listen(0, "127.0.0.1", resolve));
    const port = (hang.address() as import("node:net").AddressInfo).port;
    try {
      const h = await harness([
        standard(`http://127.0.0.1:${port}/x`, {
          timeout: "200ms",
          retry: { maxAttempts: 2, initialDelay: "10ms" },
        }),
      ]);
      const { promotion } = await h.promotions.insert(record({ state: "running" }), undefined);
      await h.promotions.update(promotion, { state: "promoted" }, Date.now());
      h.notifications.worker.start();
      await expect
        .poll(async () => (await h.notifications.outbox.forPromotion(promotion.id))[0]?.state)
        .toBe("dead");
      expect((await h.notifications.outbox.forPromotion(promotion.id))[0]).toMatchObject({
        attempts: 2,
        lastOutcome: "timeout",
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hang.close(resolve));
    }
  });
});
