import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AUD,
  client,
  isFinished,
  type ServeProcess,
  serve,
  writeServeConfig,
} from "../support/ferry-serve.ts";
import { getFreePort } from "../support/net.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";
import { startReceiver, type TestReceiver } from "./receiver.ts";

const HOOKS_SECRET = `whsec_${Buffer.alloc(32, 11).toString("base64")}`;
const FLAKY_SECRET = `whsec_${Buffer.alloc(24, 12).toString("base64")}`;

let source: TestRegistry;
let target: TestRegistry;
let github: OidcIssuer;
let signed: SignedImage;
let other: SignedImage;
let work: string;
let flaky: TestReceiver;
let chat: TestReceiver;
let outsider: TestReceiver;
let hooks: TestReceiver | undefined;
const running: ServeProcess[] = [];

beforeAll(async () => {
  [source, target, github] = await Promise.all([startRegistry(), startRegistry(), startOidcIssuer()]);
  work = mkdtempSync(path.join(tmpdir(), "ferry-notifications-"));
  signed = await pushSignedImage(source, "staging/web", work);
  other = await pushSignedImage(source, "staging/web", work, { keys: signed.keys });
  // Two 500s, then 204: the same delivery, retried.
  [flaky, chat, outsider] = await Promise.all([
    startReceiver((n) => ({ status: n < 2 ? 500 : 204 })),
    startReceiver(() => ({ status: 200 })),
    startReceiver(() => ({ status: 204 })),
  ]);
});

afterAll(async () => {
  for (const p of running) p.child.kill("SIGKILL");
  await Promise.all([
    source?.stop(),
    target?.stop(),
    github?.stop(),
    flaky?.stop(),
    chat?.stop(),
    outsider?.stop(),
    hooks?.stop(),
  ]);
});

/** The sum of the samples of `name` in Ferry's `/metrics` that carry `labels`, 0 when none does. */
async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(" ");
    if (series === undefined || (series !== name && !series.startsWith(`${name}{`))) continue;
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) sum += Number(value);
  }
  return sum;
}

describe("notifications from a running ferry serve", () => {
  it("signs, retries, survives SIGKILL with deliveries pending, and only ever contacts configured URLs", async () => {
    const hooksPort = await getFreePort();
    const hooksUrl = `http://127.0.0.1:${hooksPort}/hooks/ferry`;
    const retry = { initialDelay: "100ms", maxDelay: "400ms", maxAttempts: 1000 };
    const require = { signature: { authorities: ["ci"] } };
    const { file, url } = await writeServeConfig(work, {
      store: { sqlite: "./ferry.db" },
      issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
      registries: [{ url: source.url }, { url: target.url }],
      trust: { authorities: [{ name: "ci", key: signed.keys.publicKeyPath }] },
      environments: [
        { name: "staging", require },
        { name: "production", after: "staging", require },
      ],
      apps: [
        {
          name: "web",
          images: { staging: `${source.host}/staging/web`, production: `${target.host}/prod/web` },
          pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
        },
      ],
      promotion: { pollInterval: "200ms", leaseTtl: "2s" },
      notifications: [
        { name: "hooks", url: hooksUrl, events: ["promoted", "failed"], secret: HOOKS_SECRET, retry },
        { name: "flaky", url: flaky.url, events: ["promoted"], secret: FLAKY_SECRET, retry },
        { name: "chat", url: chat.url, events: ["promoted", "failed"], format: "slack", retry },
      ],
    });
    let ferry = await serve(file, url);
    running.push(ferry);
    const api = client(github, () => ferry.url);

    // promoted: into staging. The request names a URL of its own: it must never be contacted.
    const staged = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: signed.digest,
      to: "staging",
      reason: `notify ${outsider.url} please`,
    });
    expect(staged.status, JSON.stringify(staged.json)).toBe(201);
    expect((await api.until(staged.json.id, isFinished)).state).toBe("promoted");
    // failed: into production a digest that never entered staging.
    const skipped = await api.call("POST", "/v1/promotions", {
      app: "web",
      digest: other.digest,
      to: "production",
    });
    expect(skipped.status, JSON.stringify(skipped.json)).toBe(201);
    const ended = await api.until(skipped.json.id, isFinished);
    expect([ended.state, ended.result?.reason]).toEqual(["failed", "not_promoted_upstream"]);

    // The failing receiver gets the same delivery until it answers 2xx; the down one is retried.
    await expect
      .poll(
        () => metric(url, "ferry_notification_deliveries_total", { receiver: "flaky", outcome: "delivered" }),
        { timeout: 20_000 },
      )
      .toBe(1);
    await expect
      .poll(
        () => metric(url, "ferry_notification_deliveries_total", { receiver: "chat", outcome: "delivered" }),
        { timeout: 20_000 },
      )
      .toBe(2);
    await expect
      .poll(
        () =>
          metric(url, "ferry_notification_deliveries_total", {
            receiver: "hooks",
            event: "failed",
            outcome: "failed",
          }),
        { timeout: 20_000 },
      )
      .toBeGreaterThanOrEqual(1);
    expect(await metric(url, "ferry_notification_outbox_pending")).toBe(2);

    expect(flaky.received).toHaveLength(3);
    const ids = new Set(flaky.received.map((r) => r.headers["webhook-id"]));
    expect(ids.size).toBe(1);
    for (const r of flaky.received) {
      const verified = new Webhook(FLAKY_SECRET).verify(r.body, r.headers) as Record<string, unknown>;
      expect(verified).toMatchObject({
        type: "ferry.promotion.promoted",
        data: {
          id: staged.json.id,
          app: "web",
          environment: "staging",
          digest: signed.digest,
          state: "promoted",
        },
      });
    }
    // A receiver's secret does not verify another's deliveries.
    expect(() =>
      new Webhook(HOOKS_SECRET).verify(flaky.received[0]!.body, flaky.received[0]!.headers),
    ).toThrow();

    // Slack: `{text}` only, one line with a link to the promotion.
    expect(chat.received.map((r) => Object.keys(JSON.parse(r.body)))).toEqual([["text"], ["text"]]);
    const texts = chat.received.map((r) => JSON.parse(r.body).text as string);
    const failedText = texts.find((t) => t.includes("failed to enter"));
    const promotedText = texts.find((t) => t.includes("was promoted into"));
    expect(failedText).toBe(
      `Ferry: web ${other.digest.slice(0, "sha256:".length + 12)}… failed to enter production: not_promoted_upstream (<${AUD}/v1/promotions/${skipped.json.id}|promotion ${skipped.json.id}>)`,
    );
    expect(promotedText).toBe(
      `Ferry: web ${signed.digest.slice(0, "sha256:".length + 12)}… was promoted into staging (<${AUD}/v1/promotions/${staged.json.id}|promotion ${staged.json.id}>)`,
    );
    expect(chat.received[0]!.headers).not.toHaveProperty("webhook-signature");

    // SIGKILL with two deliveries pending (their receiver is down); it comes up; Ferry restarts.
    const killed = await ferry.kill();
    expect(killed.signal).toBe("SIGKILL");
    hooks = await startReceiver(() => ({ status: 204 }), hooksPort);
    ferry = await serve(file, url);
    running.push(ferry);
    await expect.poll(() => hooks!.received.length, { timeout: 20_000 }).toBe(2);
    await expect.poll(() => metric(url, "ferry_notification_outbox_pending"), { timeout: 20_000 }).toBe(0);
    const got = hooks.received.map(
      (r) => new Webhook(HOOKS_SECRET).verify(r.body, r.headers) as { type: string; data: { id: string } },
    );
    expect(got.map((g) => [g.type, g.data.id]).sort()).toEqual(
      [
        ["ferry.promotion.failed", skipped.json.id],
        ["ferry.promotion.promoted", staged.json.id],
      ].sort(),
    );
    expect(new Set(hooks.received.map((r) => r.headers["webhook-id"])).size).toBe(2);

    // Nothing went anywhere but the configured receivers.
    expect(outsider.received).toHaveLength(0);
    expect(flaky.received).toHaveLength(3);
    expect(chat.received).toHaveLength(2);
    const logs = (await ferry.kill()).stdout + killed.stdout;
    expect(logs).toContain('"msg":"notification delivered"');
    expect(logs).not.toContain(HOOKS_SECRET.slice("whsec_".length));
    expect(logs).not.toContain(FLAKY_SECRET.slice("whsec_".length));
  });
});
