import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseExport } from "../../src/audit/format.ts";
import type { AuditEntry } from "../../src/audit/types.ts";
import { verifyChain } from "../../src/audit/verify.ts";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { startReceiver, type TestReceiver } from "../notifications/receiver.ts";
import { runFerry } from "../support/cli.ts";
import { type ApiAnswer, callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { startGitServer, type TestGitServer } from "../support/git-server.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage } from "../support/signed-image.ts";

// Every promotion decision of a running Ferry lands in the audit log, each with the right actor,
// subject and outcome (docs/evidence.md, "Promotion decisions"), and the chain still verifies.

const AUD = "https://ferry.test";
const GIT_TOKEN = "audit-git-t0ken-0123456789";
const SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;

let registry: TestRegistry;
let github: OidcIssuer;
let sso: OidcIssuer;
let gitServer: TestGitServer;
let ops: TestReceiver;
let gone: TestReceiver;
let ferry: TestFerry;
let digestA: string;
let digestB: string;

const PEOPLE = {
  rm1: { sub: "rm-1", groups: ["release-managers"] },
  rm2: { sub: "rm-2", groups: ["release-managers"] },
  incident: { sub: "incident-lead", groups: ["incident"] },
  auditor: { sub: "ada", groups: ["auditors"] },
} as const;
type Who = keyof typeof PEOPLE | "main";

async function tokenOf(who: Who): Promise<string> {
  if (who === "main") return github.sign(githubClaims({ iss: github.url, aud: AUD }));
  const p = PEOPLE[who];
  return sso.sign(
    humanClaims({ iss: sso.url, aud: AUD }, { sub: p.sub, groups: [...p.groups], name: `${p.sub} name` }),
  );
}
async function call(who: Who, method: string, url: string, body?: unknown): Promise<ApiAnswer> {
  return callApi(ferry, await tokenOf(who), method, url, body);
}
async function promote(who: Who, body: Record<string, unknown>): Promise<string> {
  const res = await call(who, "POST", "/v1/promotions", body);
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return String(res.json.id);
}
async function until(id: string, states: string[]): Promise<Record<string, unknown>> {
  for (let i = 0; i < 60; i++) {
    const { json } = await call("main", "GET", `/v1/promotions/${id}?wait=5s`);
    if (states.includes(String(json.state))) return json;
  }
  throw new Error(`promotion ${id} did not reach ${states.join("/")}`);
}

/** The log as an auditor reads it over HTTP, all of it. */
async function readLog(): Promise<AuditEntry[]> {
  await ferry.audit.flush();
  const res = await fetch(`${ferry.url}/v1/audit?after=0&limit=10000`, {
    headers: { authorization: `Bearer ${await tokenOf("auditor")}` },
  });
  expect(res.status).toBe(200);
  const parsed = parseExport(await res.text());
  if (!parsed.ok) throw new Error(`line ${parsed.line}: ${parsed.problem}`);
  return parsed.entries;
}
async function entriesOf(id: string): Promise<AuditEntry[]> {
  return (await readLog()).filter((e) => e.subject === id);
}
const person = (who: keyof typeof PEOPLE) => ({
  issuer: sso.url,
  subject: PEOPLE[who].sub,
  name: `${PEOPLE[who].sub} name`,
});

beforeAll(async () => {
  [registry, github, sso, gitServer, ops, gone] = await Promise.all([
    startRegistry(),
    startOidcIssuer(),
    startOidcIssuer(),
    startGitServer({ username: "ferry", password: GIT_TOKEN }),
    startReceiver(() => ({ status: 204 })),
    // Refuses every delivery: a 4xx other than 408/429 is given up at once.
    startReceiver(() => ({ status: 410 })),
  ]);
  const work = mkdtempSync(path.join(tmpdir(), "ferry-audit-promotion-"));
  const a = await pushSignedImage(registry, "staging/web", work, { bundle: false });
  const b = await pushSignedImage(registry, "staging/web", work, { bundle: false, keys: a.keys });
  digestA = a.digest;
  digestB = b.digest;
  await gitServer.createRepo("deploy", { "staging/web.yaml": "image: old.example/web:v1\n" });
  const require = { signature: { authorities: ["ci"] } };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [
      loopbackIssuerConfig("github", github, AUD, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, AUD, { kind: "human", groupsClaim: "groups" }),
    ],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ci", key: a.keys.publicKeyPath }] },
    environments: [
      { name: "staging", require },
      {
        name: "production",
        after: "staging",
        require,
        promoters: {
          pipelines: [{ issuer: "github", claims: { ref: "refs/heads/main" } }],
          groups: ["incident"],
        },
        approvals: {
          count: 1,
          groups: ["release-managers"],
          separationOfDuties: { requireLinkedIdentity: false },
        },
        breakGlass: { groups: ["incident"], reviewWithin: "4h" },
      },
    ],
    apps: [
      {
        name: "web",
        images: { staging: `${registry.host}/staging/web`, production: `${registry.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
        gitops: {
          staging: {
            repo: `${gitServer.baseUrl}/deploy.git`,
            auth: { token: GIT_TOKEN, username: "ferry" },
            author: { name: "Ferry Bot", email: "ferry@example.test" },
            path: "staging/web.yaml",
            kind: "yaml",
            field: "image",
          },
        },
      },
    ],
    notifications: [
      { name: "ops", url: ops.url, events: ["promoted"], secret: SECRET },
      { name: "gone", url: gone.url, events: ["rejected"], secret: SECRET },
    ],
    audit: { readers: ["auditors"] },
    promotion: { pollInterval: "200ms" },
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([
    registry?.stop(),
    github?.stop(),
    sso?.stop(),
    gitServer?.stop(),
    ops?.stop(),
    gone?.stop(),
  ]);
});

describe("promotion decisions in the audit log of a running Ferry", () => {
  let staged: string;

  it("records a promotion into staging: request, gates, states, GitOps commit, summary, delivery", async () => {
    staged = await promote("main", { app: "web", digest: digestA, to: "staging" });
    const done = await until(staged, ["promoted", "failed"]);
    expect(done.state, JSON.stringify(done)).toBe("promoted");
    // What the steps did, as stored (the resource shows no step data).
    const row = await ferry.store.db
      .selectFrom("promotions")
      .select("steps")
      .where("id", "=", staged)
      .executeTakeFirstOrThrow();
    const steps = JSON.parse(row.steps) as { name: string; data?: Record<string, unknown> }[];
    const commit = (await gitServer.log("deploy", "main"))[0]!.sha;
    expect(steps.find((s) => s.name === "gitops")?.data?.commit).toBe(commit);
    // The delivery is asynchronous: wait for its entry (the receiver got it).
    for (
      let i = 0;
      i < 100 && !(await entriesOf(staged)).some((e) => e.type === "notification_delivery");
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    const entries = await entriesOf(staged);
    const types = entries.map((e) => e.type);
    expect(types[0]).toBe("promotion_requested");
    expect(entries[0]).toMatchObject({
      actor: { issuer: github.url, subject: expect.any(String) },
      outcome: "requested",
      data: { app: "web", environment: "staging", digest: digestA, rollback: false, breakGlass: false },
    });
    const gates = entries
      .filter((e) => e.type === "gate_result")
      .map((e) => `${e.data.gate}:${e.outcome}:${e.reason}`);
    expect(gates).toEqual(
      expect.arrayContaining(["verification:passed:verified", "approvals:skipped:not_configured"]),
    );
    // Each gate once: the decisions, not every evaluation.
    expect(new Set(gates).size).toBe(gates.length);
    const states = entries
      .filter((e) => e.type === "promotion_state")
      .map((e) => `${e.data.from}>${e.data.to}`);
    expect(states).toEqual(["pending>running", "running>promoted"]);
    expect(entries.find((e) => e.type === "gitops_commit")).toMatchObject({
      actor: "ferry",
      outcome: "pushed",
      data: { repo: `${gitServer.baseUrl}/deploy.git`, branch: "main", commit, path: "staging/web.yaml" },
    });
    const summary = steps.find((s) => s.name === "evidence")?.data?.summary as { digest: string };
    expect(entries.find((e) => e.type === "verification_summary")).toMatchObject({
      actor: "ferry",
      outcome: "attached",
      data: { summary: summary.digest },
    });
    expect(entries.find((e) => e.type === "notification_delivery")).toMatchObject({
      actor: "ferry",
      outcome: "delivered",
      reason: "http_204",
      data: { receiver: "ops", event: "promoted", attempt: 1 },
    });
    expect(JSON.stringify(entries)).not.toContain(ops.url);
  });

  it("records an approval by its approver, then the promotion it let through", async () => {
    const id = await promote("main", { app: "web", digest: digestA, to: "production" });
    await until(id, ["waiting"]);
    const vote = await call("rm1", "POST", `/v1/promotions/${id}/approvals`, {
      decision: "approve",
      comment: "ship it",
    });
    expect(vote.status, JSON.stringify(vote.json)).toBe(200);
    expect((await until(id, ["promoted", "failed"])).state).toBe("promoted");
    const entries = await entriesOf(id);
    const approvals = entries.filter((e) => e.type === "approval");
    expect(approvals).toHaveLength(1);
    expect(approvals[0]).toMatchObject({
      actor: person("rm1"),
      outcome: "approved",
      data: { comment: "ship it", environment: "production", digest: digestA, groups: ["release-managers"] },
    });
    const gates = entries.filter((e) => e.type === "gate_result" && e.data.gate === "approvals");
    expect(gates.map((e) => `${e.outcome}:${e.reason}`)).toEqual([
      "waiting:awaiting_approvals",
      "passed:approved",
    ]);
    const states = entries.filter((e) => e.type === "promotion_state").map((e) => e.outcome);
    expect(states).toEqual(["waiting", "running", "promoted"]);
  });

  it("records a rejection by its approver, and the refused delivery as dead", async () => {
    expect(
      (await until(await promote("main", { app: "web", digest: digestB, to: "staging" }), ["promoted"]))
        .state,
    ).toBe("promoted");
    const id = await promote("main", { app: "web", digest: digestB, to: "production" });
    await until(id, ["waiting"]);
    const res = await call("rm2", "POST", `/v1/promotions/${id}/approvals`, {
      decision: "reject",
      comment: "not during the sale",
    });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    for (let i = 0; i < 100 && !(await entriesOf(id)).some((e) => e.type === "notification_delivery"); i++)
      await new Promise((r) => setTimeout(r, 100));
    const entries = await entriesOf(id);
    expect(entries.find((e) => e.type === "rejection")).toMatchObject({
      actor: person("rm2"),
      outcome: "rejected",
      data: { comment: "not during the sale", digest: digestB },
    });
    expect(entries.filter((e) => e.type === "approval")).toEqual([]);
    expect(entries.find((e) => e.type === "promotion_state" && e.outcome === "rejected")).toMatchObject({
      reason: "rejected",
      data: { from: "waiting", to: "rejected" },
    });
    expect(entries.find((e) => e.type === "notification_delivery")).toMatchObject({
      outcome: "dead",
      reason: "http_410",
      data: { receiver: "gone", event: "rejected", attempt: 1, status: 410 },
    });
  });

  it("records break-glass with its justification, and each review by its reviewer", async () => {
    const justification = "INC-7: checkout is down";
    const id = await promote("incident", {
      app: "web",
      digest: digestB,
      to: "production",
      breakGlass: { justification },
    });
    expect((await until(id, ["promoted", "failed"])).state).toBe("promoted");
    for (const who of ["rm1", "rm2"] as const) {
      const res = await call(who, "POST", `/v1/promotions/${id}/reviews`, {
        comment: `${who} looked at INC-7`,
      });
      expect(res.status, JSON.stringify(res.json)).toBe(201);
    }
    const entries = await entriesOf(id);
    // The promotion keeps its requester's issuer and subject (no name).
    const requester = { issuer: sso.url, subject: PEOPLE.incident.sub };
    expect(entries.find((e) => e.type === "promotion_requested")).toMatchObject({
      actor: requester,
      data: { breakGlass: true, environment: "production" },
    });
    expect(entries.find((e) => e.type === "break_glass")).toMatchObject({
      actor: requester,
      outcome: "requested",
      data: { justification },
    });
    const reviews = entries.filter((e) => e.type === "review");
    expect(reviews.map((e) => [e.actor, e.outcome, e.data.comment])).toEqual([
      [person("rm1"), "reviewed", "rm1 looked at INC-7"],
      [person("rm2"), "reviewed", "rm2 looked at INC-7"],
    ]);
  });

  it("leaves no pending row, and `ferry audit verify --config` verifies the whole chain", async () => {
    await ferry.audit.flush();
    const pending = await ferry.store.db
      .selectFrom("audit_pending")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(pending.n)).toBe(0);
    expect(verifyChain(await readLog())).toMatchObject({ ok: true });
    await ferry.audit.createCheckpoint();
    const ok = await runFerry(["audit", "verify", "--config", path.join(ferry.dir, "ferry.yaml")]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`${(await ferry.audit.head()).size} entries`);
  });
});
