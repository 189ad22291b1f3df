import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseExport } from "../../src/audit/format.ts";
import type { AuditEntry, SignedCheckpoint } from "../../src/audit/types.ts";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { runFerry, runFerryInProcess } from "../support/cli.ts";
import { runCosign } from "../support/cosign.ts";
import {
  exchangeToken,
  stagingFerryJwtCredential,
  startTestFerry,
  type TestFerry,
} from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

// The audit log end to end: what the running service appends, who may read it, and checkpoints that
// the real cosign and `ferry audit verify` accept.

const PUBLIC_URL = "https://ferry.test";

let registry: TestRegistry;
let github: OidcIssuer;
let sso: OidcIssuer;
let ferry: TestFerry;
let dir: string;
let image: string;

const pipelineToken = (sub: string, over: Record<string, unknown> = {}) =>
  github.sign(githubClaims({ iss: github.url, aud: PUBLIC_URL }, { sub, ...over }));
const personToken = (sub: string, groups: string[]) =>
  sso.sign(humanClaims({ iss: sso.url, aud: "ferry" }, { sub, groups }));

async function get(url: string, token: string): Promise<Response> {
  return fetch(`${ferry.url}${url}`, { headers: { authorization: `Bearer ${token}` } });
}

async function readLog(after = 0, limit?: number): Promise<AuditEntry[]> {
  const res = await get(
    `/v1/audit?after=${after}${limit ? `&limit=${limit}` : ""}`,
    await personToken("ada", ["auditors"]),
  );
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/jsonl/);
  const parsed = parseExport(await res.text());
  if (!parsed.ok) throw new Error(`line ${parsed.line}: ${parsed.problem}`);
  return parsed.entries;
}

beforeAll(async () => {
  [registry, github, sso] = await Promise.all([
    startRegistry({ auth: "none" }),
    startOidcIssuer(),
    startOidcIssuer(),
  ]);
  dir = mkdtempSync(path.join(tmpdir(), "ferry-audit-http-"));
  const layout = await buildImageLayout(path.join(dir, "layout"), {});
  const digest = await pushImage(layout.dir, registry, "staging/web:v1");
  image = `${registry.host}/staging/web@${digest}`;
  const authority = { authorities: ["ferry"] };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    issuers: [
      loopbackIssuerConfig("github", github, PUBLIC_URL, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, "ferry", { kind: "human", groupsClaim: "groups" }),
    ],
    registries: [{ url: registry.url, auth: { username: "ferry", password: "s3cret-password" } }],
    trust: { authorities: [{ name: "ferry", key: "ferry" }] },
    environments: [{ name: "staging", require: { signature: authority } }],
    apps: [
      {
        name: "web",
        images: { staging: `${registry.host}/staging/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    credentials: [stagingFerryJwtCredential("github", PUBLIC_URL)],
    verification: { readers: ["release-managers"] },
    audit: { readers: ["auditors"] },
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop(), sso?.stop()]);
});

describe("the audit log of a running Ferry", () => {
  it("starts with config_loaded and the policy hash, which names no secret", async () => {
    const [first] = await readLog(0, 1);
    expect(first).toMatchObject({ seq: 1, type: "config_loaded", actor: "ferry", outcome: "loaded" });
    expect(first!.data.policyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(first!.data.keyId).toBe(ferry.signingKey.id);
    expect(first!.data.environments).toHaveProperty("staging");
    expect(JSON.stringify(first)).not.toContain("s3cret-password");
  });

  it("records each token exchange, granted and refused, linked to its token_exchanges row", async () => {
    const before = (await ferry.audit.head()).size;
    const granted = await exchangeToken(ferry, await pipelineToken("web-main"), "ferry-staging");
    expect(granted.status).toBe(200);
    const refused = await exchangeToken(
      ferry,
      await pipelineToken("other", { repository_id: "99" }),
      "ferry-staging",
    );
    const refusal = ((await refused.json()) as { reason: string }).reason;
    expect(refused.status).toBe(403);
    const garbage = await exchangeToken(ferry, "not-a-token", "ferry-staging");
    expect(garbage.status).toBe(400);
    const entries = (await readLog(before)).filter((e) => e.type === "token_exchange");
    expect(entries.map((e) => [e.outcome, e.reason])).toEqual([
      ["granted", null],
      ["refused", refusal],
      ["refused", "token_malformed"],
    ]);
    expect(entries[0]!.actor).toEqual({ issuer: github.url, subject: "web-main" });
    expect(entries[2]!.actor).toBe("anonymous");
    const rows = await ferry.store.db.selectFrom("token_exchanges").selectAll().execute();
    for (const e of entries) {
      const row = rows.find((r) => r.id === e.data.exchangeId);
      expect(row?.decision).toBe(e.outcome);
    }
  });

  it("records each signing, linked to its signings row", async () => {
    const before = (await ferry.audit.head()).size;
    const res = await fetch(`${ferry.url}/v1/signatures`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${await pipelineToken("signer")}`,
      },
      body: JSON.stringify({ image }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const entries = (await readLog(before)).filter((e) => e.type === "signing");
    const rows = await ferry.store.db.selectFrom("signings").selectAll().execute();
    expect(entries.length).toBe(rows.length);
    expect(entries.length).toBeGreaterThan(0);
    for (const e of entries) {
      expect(e.subject).toBe(image.split("@")[1]);
      expect(rows.find((r) => r.id === e.data.signingId)?.status).toBe(e.outcome);
    }
  });

  it("records each verification asked through the API, refusals included", async () => {
    const before = (await ferry.audit.head()).size;
    const ask = async (token: string) =>
      fetch(`${ferry.url}/v1/verifications`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ image, environment: "staging" }),
      });
    expect((await ask(await personToken("grace", ["release-managers"]))).status).toBe(200);
    expect((await ask(await personToken("eve", ["engineering"]))).status).toBe(403);
    const entries = (await readLog(before)).filter((e) => e.type === "verification");
    expect(entries.map((e) => [e.outcome, e.reason, e.data.environment])).toEqual([
      ["allowed", null, "staging"],
      ["refused", "not_a_reader", "staging"],
    ]);
    expect(entries[0]).toMatchObject({
      subject: image.split("@")[1],
      actor: { issuer: sso.url, subject: "grace" },
    });
  });

  it("reads only for audit.readers: 403 with a reason for others, 400 for a bad page", async () => {
    const reason = async (res: Response) => ((await res.json()) as { reason?: string }).reason;
    const outsider = await get("/v1/audit", await personToken("eve", ["release-managers"]));
    expect(outsider.status).toBe(403);
    expect(await reason(outsider)).toBe("not_a_reader");
    const pipeline = await get("/v1/audit", await pipelineToken("web-main"));
    expect(pipeline.status).toBe(403);
    expect(await reason(pipeline)).toBe("not_a_person");
    expect((await fetch(`${ferry.url}/v1/audit`)).status).toBe(401);
    for (const query of ["limit=0", "limit=10001", "after=-1", "after=x", "seq=3"]) {
      expect((await get(`/v1/audit?${query}`, await personToken("ada", ["auditors"]))).status, query).toBe(
        400,
      );
    }
    const page = await readLog(1, 2);
    expect(page.map((e) => e.seq)).toEqual([2, 3]);
  });

  it("serves a signed checkpoint that cosign verify-blob and `ferry audit verify` accept, and catches a tampered export", async () => {
    const reader = await personToken("ada", ["auditors"]);
    await ferry.audit.flush();
    await ferry.audit.createCheckpoint();
    // Any authenticated caller may read the checkpoint.
    const res = await get("/v1/audit/checkpoint", await pipelineToken("web-main"));
    expect(res.status).toBe(200);
    const cp = (await res.json()) as SignedCheckpoint;
    expect(cp.checkpoint).toMatchObject({ origin: PUBLIC_URL, size: expect.any(Number) });
    expect(JSON.parse(cp.body)).toEqual(cp.checkpoint);

    const out = mkdtempSync(path.join(tmpdir(), "ferry-audit-export-"));
    const files = {
      key: path.join(out, "ferry.pub"),
      body: path.join(out, "cp.json"),
      sig: path.join(out, "cp.json.sig"),
      log: path.join(out, "export.jsonl"),
    };
    writeFileSync(files.key, ferry.signingKey.publicKeyPem);
    writeFileSync(files.body, cp.body);
    writeFileSync(files.sig, cp.signature);
    const exported = await get("/v1/audit?limit=10000", reader);
    writeFileSync(files.log, await exported.text());

    const cosign = await runCosign([
      "verify-blob",
      "--key",
      files.key,
      "--signature",
      files.sig,
      "--insecure-ignore-tlog",
      files.body,
    ]);
    expect(cosign.code, cosign.stderr).toBe(0);
    expect(cosign.stderr).toContain("Verified OK");
    // cosign refuses the same signature over other bytes.
    writeFileSync(
      `${files.body}.other`,
      cp.body.replace(`"size":${cp.checkpoint.size}`, `"size":${cp.checkpoint.size + 1}`),
    );
    const forged = await runCosign([
      "verify-blob",
      "--key",
      files.key,
      "--signature",
      files.sig,
      "--insecure-ignore-tlog",
      `${files.body}.other`,
    ]);
    expect(forged.code).not.toBe(0);

    const offline = ["audit", "verify", "--file", files.log, "--checkpoint", files.body, "--key", files.key];
    const ok = await runFerryInProcess(offline);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^audit log ok: \d+ entries, head [0-9a-f]{64}; checkpoint of size \d+/);

    const lines = readFileSync(files.log, "utf8").trimEnd().split("\n");
    const edited = JSON.parse(lines[2]!) as AuditEntry;
    edited.outcome = "tampered";
    lines[2] = JSON.stringify(edited);
    writeFileSync(files.log, `${lines.join("\n")}\n`);
    const bad = await runFerryInProcess(offline);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("audit log BAD at seq 3");

    // Cut the tail below the checkpoint: only the checkpoint can tell.
    writeFileSync(files.log, `${lines.slice(0, 2).join("\n")}\n`);
    const cut = await runFerryInProcess(offline);
    expect(cut.code).toBe(1);
    expect(cut.out).toContain("audit log BAD at seq 3");

    const foreign = await runFerryInProcess(["audit", "verify", "--file", files.log]);
    expect(foreign.code).toBe(0);
    const usage = await runFerryInProcess([
      "audit",
      "verify",
      "--file",
      files.log,
      "--checkpoint",
      files.body,
    ]);
    expect(usage.code).toBe(2);
  });

  it("`ferry audit verify --config` verifies the store's chain and its checkpoints", async () => {
    await ferry.audit.flush();
    // A separate process, as an operator runs it beside the service (one SQLite store per process).
    const ok = await runFerry(["audit", "verify", "--config", path.join(ferry.dir, "ferry.yaml")]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`${(await ferry.audit.head()).size} entries`);
    expect(ok.stdout).toContain("verifies with key");
  });
});
