import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { verify as cosignVerify } from "../support/cosign.ts";
import { type ApiAnswer, callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";

let source: TestRegistry;
let target: TestRegistry;
let github: OidcIssuer;
let sso: OidcIssuer;
let ferry: TestFerry;
let signed: SignedImage;
let other: SignedImage;
let digest: string;

type Resource = {
  id: string;
  state: string;
  from: string | null;
  to: string;
  gates: { name: string; status: string; reason: string }[];
  steps: { name: string; status: string; attempts: number }[];
  requestedBy: Record<string, unknown>;
  verification?: { policyHash: string; source?: { allowed: boolean }; target?: { allowed: boolean } };
  result?: { reason: string };
};

async function token(over: Record<string, unknown> = {}): Promise<string> {
  return github.sign(githubClaims({ iss: github.url, aud: AUD }, over));
}

async function call(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  return callApi(ferry, await token(), method, url, body, headers);
}

const promote = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call("POST", "/v1/promotions", body, headers);

/** Long-polls until the promotion has finished. */
async function finished(id: string): Promise<Resource> {
  for (let i = 0; i < 60; i++) {
    const { json } = await call("GET", `/v1/promotions/${id}?wait=5s`);
    const p = json as unknown as Resource;
    if (!["pending", "waiting", "running"].includes(p.state)) return p;
  }
  throw new Error(`promotion ${id} did not finish`);
}

beforeAll(async () => {
  [source, target, github, sso] = await Promise.all([
    startRegistry({ auth: "htpasswd" }),
    startRegistry({ auth: "htpasswd" }),
    startOidcIssuer(),
    startOidcIssuer(),
  ]);
  const work = mkdtempSync(path.join(tmpdir(), "ferry-promotion-http-"));
  signed = await pushSignedImage(source, "staging/web", work);
  other = await pushSignedImage(source, "staging/web", work, { keys: signed.keys });
  digest = signed.digest;
  const require = { signature: { authorities: ["ci"] } };
  const creds = (r: TestRegistry) => ({ url: r.url, auth: { username: r.username, password: r.password } });
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [
      loopbackIssuerConfig("github", github, AUD, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, AUD, { kind: "human", groupsClaim: "groups" }),
    ],
    registries: [creds(source), creds(target)],
    trust: { authorities: [{ name: "ci", key: signed.keys.publicKeyPath }] },
    environments: [
      { name: "staging", require },
      {
        name: "production",
        after: "staging",
        require,
        promoters: {
          pipelines: [{ issuer: "github", claims: { ref: "refs/heads/main" } }],
          groups: ["on-call"],
        },
      },
      { name: "canary", after: "staging", soak: "1h", require },
    ],
    apps: [
      {
        name: "web",
        images: {
          staging: `${source.host}/staging/web`,
          production: `${target.host}/prod/web`,
          canary: `${target.host}/canary/web`,
        },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
      {
        name: "api",
        images: { staging: `${source.host}/staging/api` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    promotion: { pollInterval: "200ms" },
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([source?.stop(), target?.stop(), github?.stop(), sso?.stop()]);
});

describe("promotion over HTTP, between two registries", () => {
  it("promotes into staging, then copies into production with signatures cosign accepts", async () => {
    const first = await promote({ app: "web", digest, to: "staging" });
    expect(first.status, JSON.stringify(first.json)).toBe(201);
    expect(first.headers.get("location")).toBe(`/v1/promotions/${first.json.id}`);
    const staged = await finished(String(first.json.id));
    expect(staged.state).toBe("promoted");
    expect(staged.from).toBeNull();

    const second = await promote({ app: "web", digest, to: "production" });
    expect(second.status).toBe(201);
    const p = await finished(String(second.json.id));
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    expect(p.from).toBe("staging");
    expect(p.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "copy:done",
      "gitops:skipped",
      "evidence:done",
      "record:done",
    ]);
    expect(p.verification?.source?.allowed).toBe(true);
    expect(p.verification?.target?.allowed).toBe(true);
    expect(p.verification?.policyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(p.requestedBy).toMatchObject({ issuer: "github", kind: "pipeline", actor: "octocat" });
    expect(String(p.requestedBy.runUrl)).toMatch(/\/acme\/web\/actions\/runs\/9876543210$/);

    // The answer has every field openapi.yaml requires of the resource, and no other.
    const schema = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8")).components
      .schemas.Promotion as { required: string[]; properties: Record<string, unknown> };
    for (const field of schema.required) expect(p, field).toHaveProperty(field);
    for (const field of Object.keys(p)) expect(Object.keys(schema.properties), field).toContain(field);

    const image = `${target.host}/prod/web@${digest}`;
    const verified = await cosignVerify(image, signed.keys.publicKeyPath, {
      registryAuth: { username: target.username!, password: target.password! },
    });
    expect(verified.code, verified.stderr).toBe(0);
  });

  it("shows the current digests and the history", async () => {
    const { status, json } = await call("GET", "/v1/apps");
    expect(status).toBe(200);
    const web = (
      json.apps as { name: string; environments: { name: string; current?: { digest: string } }[] }[]
    ).find((a) => a.name === "web")!;
    expect(web.environments.map((e) => [e.name, e.current?.digest])).toEqual([
      ["staging", digest],
      ["production", digest],
      ["canary", undefined],
    ]);
    const env = await call("GET", "/v1/apps/web/environments/production");
    expect(env.status).toBe(200);
    expect(env.json).toMatchObject({
      app: "web",
      environment: "production",
      repository: `${target.host}/prod/web`,
    });
    expect(env.json.history).toEqual([expect.objectContaining({ digest, rollback: false })]);
  });

  it("exports promotion metrics", async () => {
    const text = await (await fetch(`${ferry.url}/metrics`)).text();
    expect(text).toMatch(/ferry_promotions_total\{app="web",environment="production",outcome="promoted"\} 1/);
    expect(text).toMatch(/ferry_promotion_step_duration_seconds_count\{step="copy",outcome="ok"\} [1-9]/);
    expect(text).toContain("# TYPE ferry_promotions_waiting gauge");
  });

  it("gives one promotion for 100 identical requests at once", async () => {
    await finished(String((await promote({ app: "web", digest: other.digest, to: "staging" })).json.id));
    // canary soaks for an hour: the promotion stays unfinished through the burst.
    const body = { app: "web", digest: other.digest, to: "canary" };
    const answers = await Promise.all(Array.from({ length: 100 }, () => promote(body)));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(99);
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    const list = await call("GET", `/v1/promotions?app=web&environment=canary`);
    expect((list.json.items as unknown[]).length).toBe(1);
  });

  it("long-polls until the promotion changes, and cancels a waiting one", async () => {
    const { json } = await call("GET", `/v1/promotions?environment=canary&state=waiting`);
    const waiting = (json.items as Resource[])[0]!;
    expect(waiting.gates.find((g) => g.name === "soak")).toMatchObject({
      status: "waiting",
      reason: "soaking",
    });
    const poll = call("GET", `/v1/promotions/${waiting.id}?wait=30s`);
    const cancel = await call("POST", `/v1/promotions/${waiting.id}/cancel`);
    expect(cancel.status).toBe(200);
    expect(cancel.json.state).toBe("cancelled");
    const answered = await poll;
    expect(answered.json.state).toBe("cancelled");
    const again = await call("POST", `/v1/promotions/${waiting.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.json.code).toBe("conflict");
  });

  it("answers an Idempotency-Key with its first promotion, and refuses it for another body", async () => {
    const body = { app: "web", digest: other.digest, to: "canary" };
    const a = await promote(body, { "idempotency-key": "run-42" });
    const b = await promote(body, { "idempotency-key": "run-42" });
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.json.id).toBe(a.json.id);
    const c = await promote({ ...body, reason: "other" }, { "idempotency-key": "run-42" });
    expect(c.status).toBe(422);
    expect(c.json.code).toBe("idempotency_key_reused");
  });

  it("lets on-call people roll production back, and no one else", async () => {
    const next = await promote({ app: "web", digest: other.digest, to: "production" });
    expect((await finished(String(next.json.id))).state).toBe("promoted");
    const asPerson = async (groups: string[], body: Record<string, unknown>) => {
      const bearer = await sso.sign(humanClaims({ iss: sso.url, aud: AUD }, { groups }));
      const res = await fetch(`${ferry.url}/v1/promotions`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const rollback = { app: "web", digest, to: "production", rollback: true, reason: "checkout broke" };
    const outsider = await asPerson(["engineering"], rollback);
    expect(outsider.status).toBe(403);
    expect(outsider.json.reason).toBe("not_in_promoter_group");
    const onCall = await asPerson(["on-call"], rollback);
    expect(onCall.status, JSON.stringify(onCall.json)).toBe(201);
    const p = await finished(String(onCall.json.id));
    expect(p).toMatchObject({ state: "promoted", rollback: true, from: null });
    expect(p.requestedBy).toMatchObject({ issuer: "sso", kind: "human" });
    expect(p.gates.filter((g) => g.name === "order" || g.name === "soak").map((g) => g.status)).toEqual([
      "skipped",
      "skipped",
    ]);
    const env = await call("GET", "/v1/apps/web/environments/production");
    expect(
      (env.json.history as { digest: string; rollback: boolean }[]).map((h) => [h.digest, h.rollback]),
    ).toEqual([
      [digest, true],
      [other.digest, false],
      [digest, false],
    ]);
  });

  it("pages the list newest first with an opaque cursor", async () => {
    const first = await call("GET", "/v1/promotions?app=web&limit=1");
    expect((first.json.items as unknown[]).length).toBe(1);
    expect(typeof first.json.next).toBe("string");
    const second = await call("GET", `/v1/promotions?app=web&limit=1&cursor=${first.json.next}`);
    expect((second.json.items as Resource[])[0]!.id).not.toBe((first.json.items as Resource[])[0]!.id);
    const bad = await call("GET", "/v1/promotions?cursor=nonsense");
    expect(bad.status).toBe(400);
  });
});

describe("bad promotion requests, each a 4xx with its reason", () => {
  const cases: [string, () => Record<string, unknown>, number, string, string?][] = [
    ["an unknown app", () => ({ app: "nope", digest, to: "staging" }), 404, "not_found", "unknown_app"],
    [
      "an unknown environment",
      () => ({ app: "web", digest, to: "nope" }),
      404,
      "not_found",
      "unknown_environment",
    ],
    [
      "an environment the app has no repository for",
      () => ({ app: "api", digest, to: "production" }),
      400,
      "validation_failed",
      "no_repository",
    ],
    ["a tag instead of a digest", () => ({ app: "web", digest: "v1", to: "staging" }), 400, "tag_reference"],
    [
      "a digest absent from the source",
      () => ({ app: "web", digest: `sha256:${"0".repeat(64)}`, to: "production" }),
      404,
      "not_found",
      "source_missing",
    ],
    [
      "a rollback to a digest never current there",
      () => ({
        app: "web",
        digest: `sha256:${"a".repeat(64)}`,
        to: "production",
        rollback: true,
        reason: "x",
      }),
      409,
      "conflict",
      "rollback_never_current",
    ],
    [
      "a rollback without reason",
      () => ({ app: "web", digest, to: "staging", rollback: true }),
      400,
      "validation_failed",
      "rollback_reason_missing",
    ],
    [
      "an unknown field",
      () => ({ app: "web", digest, to: "staging", breakGlass: true }),
      400,
      "validation_failed",
    ],
  ];
  it.each(cases)("refuses %s", async (_name, body, status, code, reason) => {
    const res = await promote(body());
    expect(res.status, JSON.stringify(res.json)).toBe(status);
    expect(res.json.code).toBe(code);
    if (reason !== undefined) expect(res.json.reason).toBe(reason);
  });

  it("refuses a pipeline of another app with 403 and its reason", async () => {
    const res = await fetch(`${ferry.url}/v1/promotions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${await token({ repository_id: "99" })}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ app: "web", digest, to: "staging" }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(403);
    expect(json).toMatchObject({ code: "forbidden", reason: "not_app_pipeline" });
  });

  it("refuses a malformed Idempotency-Key", async () => {
    const res = await promote({ app: "web", digest, to: "staging" }, { "idempotency-key": "x".repeat(201) });
    expect(res.status).toBe(400);
    expect(res.json.reason).toBe("invalid_idempotency_key");
  });

  it("refuses to cancel a finished promotion with 409", async () => {
    const { json } = await call("GET", "/v1/promotions?app=web&environment=production&state=promoted");
    const done = (json.items as Resource[])[0]!;
    const res = await call("POST", `/v1/promotions/${done.id}/cancel`);
    expect(res.status).toBe(409);
    expect(res.json.code).toBe("conflict");
  });

  it("answers 404 for an unknown promotion", async () => {
    const res = await call("GET", "/v1/promotions/01890000-0000-7000-8000-000000000000");
    expect(res.status).toBe(404);
  });
});
