import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { type ApiAnswer, callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage } from "../support/signed-image.ts";
import { startReceiver, type TestReceiver } from "./receiver.ts";

/**
 * The approval events (`awaiting_approval`, `approved`, `rejected`, `break_glass`) from a running
 * Ferry, with real tokens from two loopback issuers (a pipeline issuer, an SSO issuer with groups
 * and a link claim), to two real receivers: `all` takes every event, `approvers` only
 * `awaiting_approval` and `break_glass`. Every delivery is verified with `standardwebhooks`.
 */

const AUD = "https://ferry.test";
const ALL_SECRET = `whsec_${Buffer.alloc(32, 21).toString("base64")}`;
const APPROVERS_SECRET = `whsec_${Buffer.alloc(32, 22).toString("base64")}`;
const REQUESTER = "repo:acme/web:ref:refs/heads/main";

let registry: TestRegistry;
let github: OidcIssuer;
let sso: OidcIssuer;
let ferry: TestFerry;
let all: TestReceiver;
let approvers: TestReceiver;
/** Approved, then promoted. */
let digestA: string;
/** Rejected. */
let digestB: string;
/** Promoted by break-glass. */
let digestC: string;
let work: string;
let publicKeyPath: string;
/** Every token handed to Ferry: none may reach a receiver. */
const issued: string[] = [];

/** A delivery as verified with its receiver's secret. */
interface Delivery {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown> & { id: string };
}

type Resource = {
  id: string;
  state: string;
  gates: {
    name: string;
    status: string;
    reason: string;
    message?: string;
    needs?: { more: number; groups: string[] };
  }[];
};

async function pipeline(claims: Record<string, unknown> = {}): Promise<string> {
  const t = await github.sign(githubClaims({ iss: github.url, aud: AUD }, claims));
  issued.push(t);
  return t;
}

/** A release manager of the SSO issuer, linked to a GitHub id that is not the pipeline actor's. */
async function approver(sub: string): Promise<string> {
  const t = await sso.sign(
    humanClaims(
      { iss: sso.url, aud: AUD },
      { sub, name: `Person ${sub}`, groups: ["release-managers"], github_id: `9${sub.length}0${sub}` },
    ),
  );
  issued.push(t);
  return t;
}

async function promote(digest: string, extra: Record<string, unknown> = {}, token?: string): Promise<string> {
  const answer = await callApi(ferry, token ?? (await pipeline()), "POST", "/v1/promotions", {
    app: "web",
    digest,
    to: "production",
    ...extra,
  });
  expect(answer.status, JSON.stringify(answer.json)).toBe(201);
  return String(answer.json.id);
}

async function vote(who: string, id: string, decision: string, comment?: string): Promise<ApiAnswer> {
  const answer = await callApi(ferry, await approver(who), "POST", `/v1/promotions/${id}/approvals`, {
    decision,
    ...(comment === undefined ? {} : { comment }),
  });
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer;
}

/** Reads the promotion, then long-polls each newer version until `done` holds of it. */
async function until(id: string, done: (p: Resource) => boolean): Promise<Resource> {
  let etag: string | undefined;
  for (let i = 0; i < 40; i++) {
    const answer = await callApi(
      ferry,
      await pipeline(),
      "GET",
      `/v1/promotions/${id}${etag === undefined ? "" : "?wait=5s"}`,
      undefined,
      etag === undefined ? {} : { "if-none-match": etag },
    );
    const p = answer.json as unknown as Resource;
    if (done(p)) return p;
    etag = answer.headers.get("etag") ?? undefined;
  }
  throw new Error(`promotion ${id} never got there`);
}

const approvalsGate = (p: Resource) => p.gates.find((g) => g.name === "approvals");
const finished = (p: Resource) => !["pending", "waiting", "running"].includes(p.state);

/** Entries of the outbox not yet delivered (nor given up), from Ferry's `/metrics`. */
async function pending(): Promise<number> {
  const text = await (await fetch(`${ferry.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("ferry_notification_outbox_pending "));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

/**
 * Waits until the outbox is empty. An entry is written in the transaction of the change it tells
 * of, so once a change has been read back, an empty outbox means its deliveries were all made.
 */
async function drained(): Promise<void> {
  await expect.poll(pending, { timeout: 20_000 }).toBe(0);
}

/** What `receiver` got, each delivery verified with `secret` (throws on a bad signature). */
function deliveries(receiver: TestReceiver, secret: string): Delivery[] {
  const wh = new Webhook(secret);
  return receiver.received.map((r) => {
    expect(r.method).toBe("POST");
    const event = wh.verify(r.body, r.headers) as Omit<Delivery, "id">;
    return { id: r.headers["webhook-id"]!, ...event };
  });
}

/** The order of a promotion's events, for two changes stored within the same millisecond. */
const LIFECYCLE = ["break_glass", "awaiting_approval", "approved", "rejected", "promoted", "failed"].map(
  (e) => `ferry.promotion.${e}`,
);

/**
 * The events `receiver` got for promotion `id`, in the order they happened (the body's `timestamp`:
 * deliveries run in parallel, so they may arrive in another order).
 */
function eventsOf(receiver: TestReceiver, secret: string, id: string): string[] {
  return deliveries(receiver, secret)
    .filter((d) => d.data.id === id)
    .sort(
      (a, b) =>
        a.timestamp.localeCompare(b.timestamp) || LIFECYCLE.indexOf(a.type) - LIFECYCLE.indexOf(b.type),
    )
    .map((d) => d.type);
}

function find(receiver: TestReceiver, secret: string, type: string, id: string): Delivery {
  const found = deliveries(receiver, secret).filter((d) => d.type === type && d.data.id === id);
  expect(found, `${type} of ${id}`).toHaveLength(1);
  return found[0]!;
}

beforeAll(async () => {
  [registry, github, sso] = await Promise.all([startRegistry(), startOidcIssuer(), startOidcIssuer()]);
  work = mkdtempSync(path.join(tmpdir(), "ferry-notify-approvals-"));
  const a = await pushSignedImage(registry, "prod/web", work, { bundle: false });
  const b = await pushSignedImage(registry, "prod/web", work, { bundle: false, keys: a.keys });
  const c = await pushSignedImage(registry, "prod/web", work, { bundle: false, keys: a.keys });
  [digestA, digestB, digestC] = [a.digest, b.digest, c.digest];
  publicKeyPath = a.keys.publicKeyPath;
  [all, approvers] = await Promise.all([startReceiver(), startReceiver()]);
  ferry = await startTestFerry(config(2));
});

/** Ferry's config; `canaryCount` is the canary environment's approvals `count` (a policy change). */
function config(canaryCount: number): Record<string, unknown> {
  const require = { signature: { authorities: ["ci"] } };
  const retry = { initialDelay: "100ms", maxDelay: "400ms" };
  return {
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    // Kept across a restart.
    store: { sqlite: path.join(work, "ferry.db") },
    keys: { signing: path.join(work, "signing.pem") },
    issuers: [
      loopbackIssuerConfig("github", github, AUD, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, AUD, {
        kind: "human",
        groupsClaim: "groups",
        links: { github: "github_id" },
      }),
    ],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ci", key: publicKeyPath }] },
    environments: [
      {
        name: "production",
        require,
        approvals: { count: 2, groups: ["release-managers"] },
        breakGlass: { pipelines: [{ issuer: "github", claims: { workflow: "hotfix" } }] },
      },
      { name: "canary", require, approvals: { count: canaryCount, groups: ["release-managers"] } },
    ],
    apps: [
      {
        name: "web",
        // First environments: the pipeline pushed there, nothing is copied.
        images: { production: `${registry.host}/prod/web`, canary: `${registry.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    promotion: { pollInterval: "200ms" },
    notifications: [
      {
        name: "all",
        url: all.url,
        events: ["awaiting_approval", "approved", "rejected", "promoted", "failed", "break_glass"],
        secret: ALL_SECRET,
        retry,
      },
      {
        name: "approvers",
        url: approvers.url,
        events: ["awaiting_approval", "break_glass"],
        secret: APPROVERS_SECRET,
        retry,
      },
    ],
  };
}

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop(), sso?.stop(), all?.stop(), approvers?.stop()]);
});

describe("notifications of approvals and break-glass from a running Ferry", () => {
  let approved: string;
  let rejected: string;
  let broken: string;

  it("tells awaiting_approval once, with what the gate needs, however often it is evaluated again", async () => {
    approved = await promote(digestA);
    let p = await until(approved, (x) => approvalsGate(x)?.status === "waiting");
    expect(approvalsGate(p)).toMatchObject({
      reason: "awaiting_approvals",
      needs: { more: 2, groups: ["release-managers"] },
    });
    await drained();
    const told = find(all, ALL_SECRET, "ferry.promotion.awaiting_approval", approved);
    expect(told.data).toMatchObject({
      app: "web",
      environment: "production",
      digest: digestA,
      state: "waiting",
      url: `${AUD}/v1/promotions/${approved}`,
      needs: { more: 2, groups: ["release-managers"] },
    });

    // An approval makes it due: the gate is decided again, still waiting, now for one more.
    await vote("ada", approved, "approve");
    p = await until(approved, (x) => approvalsGate(x)?.needs?.more === 1);
    expect(approvalsGate(p)).toMatchObject({ status: "waiting", reason: "awaiting_approvals" });
    // The same person approving again changes nothing.
    await vote("ada", approved, "approve");
    await drained();
    expect(eventsOf(all, ALL_SECRET, approved)).toEqual(["ferry.promotion.awaiting_approval"]);
    expect(eventsOf(approvers, APPROVERS_SECRET, approved)).toEqual(["ferry.promotion.awaiting_approval"]);
  });

  it("tells approved, then promoted, once a second person approves", async () => {
    await vote("bob", approved, "approve");
    const p = await until(approved, finished);
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    expect(approvalsGate(p)).toMatchObject({ status: "passed", reason: "approved" });
    expect(approvalsGate(p)).not.toHaveProperty("needs");
    await drained();
    expect(eventsOf(all, ALL_SECRET, approved)).toEqual([
      "ferry.promotion.awaiting_approval",
      "ferry.promotion.approved",
      "ferry.promotion.promoted",
    ]);
    const ok = find(all, ALL_SECRET, "ferry.promotion.approved", approved);
    expect(ok.data).toMatchObject({ state: "running", digest: digestA });
    expect(ok.data).not.toHaveProperty("needs");
    expect(ok.data).not.toHaveProperty("result");
    expect(find(all, ALL_SECRET, "ferry.promotion.promoted", approved).data.state).toBe("promoted");
  });

  it("tells rejected with who rejected it and why", async () => {
    rejected = await promote(digestB);
    await until(rejected, (x) => approvalsGate(x)?.status === "waiting");
    await vote("carol", rejected, "reject", "the migration is not reversible");
    expect((await until(rejected, finished)).state).toBe("rejected");
    await drained();
    expect(eventsOf(all, ALL_SECRET, rejected)).toEqual([
      "ferry.promotion.awaiting_approval",
      "ferry.promotion.rejected",
    ]);
    const no = find(all, ALL_SECRET, "ferry.promotion.rejected", rejected);
    expect(no.data).toEqual({
      id: rejected,
      app: "web",
      environment: "production",
      from: null,
      digest: digestB,
      state: "rejected",
      rollback: false,
      url: `${AUD}/v1/promotions/${rejected}`,
      result: {
        reason: "rejected",
        message: "rejected by Person carol (sso): the migration is not reversible",
        by: { issuer: "sso", subject: "carol", name: "Person carol" },
        comment: "the migration is not reversible",
      },
    });
  });

  it("tells break_glass with the justification, and never awaiting_approval for it", async () => {
    const justification = "INC-4211: checkout is down, this is the fix";
    broken = await promote(
      digestC,
      { breakGlass: { justification } },
      await pipeline({ workflow: "hotfix" }),
    );
    const p = await until(broken, finished);
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    await drained();
    expect(eventsOf(all, ALL_SECRET, broken)).toEqual([
      "ferry.promotion.break_glass",
      "ferry.promotion.promoted",
    ]);
    const glass = find(all, ALL_SECRET, "ferry.promotion.break_glass", broken);
    expect(glass.data.breakGlass).toEqual({
      justification,
      reviewBy: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(find(approvers, APPROVERS_SECRET, "ferry.promotion.break_glass", broken).data.breakGlass).toEqual(
      glass.data.breakGlass,
    );
  });

  it("gives a receiver only the events it subscribed to, each with its own webhook-id and signature", () => {
    const mine = deliveries(approvers, APPROVERS_SECRET);
    expect(mine.map((d) => `${d.type} ${d.data.id}`).sort()).toEqual(
      [
        `ferry.promotion.awaiting_approval ${approved}`,
        `ferry.promotion.awaiting_approval ${rejected}`,
        `ferry.promotion.break_glass ${broken}`,
      ].sort(),
    );
    const theirs = deliveries(all, ALL_SECRET);
    // approved: awaiting_approval, approved, promoted; rejected: awaiting_approval, rejected; break-glass: break_glass, promoted.
    expect(theirs).toHaveLength(7);
    // One webhook-id per (event, receiver): no two deliveries share one, across both receivers.
    const ids = [...mine, ...theirs].map((d) => d.id);
    expect(ids.every((id) => /^msg_[0-9a-f-]{36}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // A receiver's secret verifies its own deliveries only.
    const r = approvers.received[0]!;
    expect(() => new Webhook(ALL_SECRET).verify(r.body, r.headers)).toThrow();
  });

  it("tells awaiting_approval again when approvals stop counting (a policy change), once", async () => {
    const id = await promote(digestA, { to: "canary" });
    await until(id, (x) => approvalsGate(x)?.status === "waiting");
    await vote("ada", id, "approve");
    await until(id, (x) => approvalsGate(x)?.needs?.more === 1);
    await drained();
    expect(eventsOf(approvers, APPROVERS_SECRET, id)).toEqual(["ferry.promotion.awaiting_approval"]);

    // Restarted with canary's count raised to 3: ada's approval was given under the earlier policy.
    // The start looks at waiting promotions again at once, so approvers hear before anyone votes.
    await ferry.close();
    ferry = await startTestFerry(config(3));
    const p = await until(id, (x) => approvalsGate(x)?.needs?.more === 3);
    expect(approvalsGate(p)?.message).toContain("given under an earlier policy");
    await drained();
    const told = deliveries(approvers, APPROVERS_SECRET).filter((d) => d.data.id === id);
    expect(told.map((d) => [d.type, d.data.needs])).toEqual([
      ["ferry.promotion.awaiting_approval", { more: 2, groups: ["release-managers"] }],
      ["ferry.promotion.awaiting_approval", { more: 3, groups: ["release-managers"] }],
    ]);
    expect(new Set(told.map((d) => d.id)).size).toBe(2);

    // Votes under today's policy: fewer needed, nobody told.
    await vote("bob", id, "approve");
    await until(id, (x) => approvalsGate(x)?.needs?.more === 2);
    await vote("ada", id, "approve");
    await until(id, (x) => approvalsGate(x)?.needs?.more === 1);
    await drained();
    expect(eventsOf(all, ALL_SECRET, id)).toEqual([
      "ferry.promotion.awaiting_approval",
      "ferry.promotion.awaiting_approval",
    ]);
  });

  it("sends no token, nor the requester's identity, to any receiver", () => {
    const bodies = [...all.received, ...approvers.received].map((r) => r.body + JSON.stringify(r.headers));
    expect(issued.length).toBeGreaterThan(10);
    for (const body of bodies) {
      for (const t of issued) expect(body).not.toContain(t.split(".")[1]);
      expect(body).not.toContain(REQUESTER);
      expect(body).not.toContain("octocat");
      expect(body).not.toContain("github_id");
    }
  });
});
