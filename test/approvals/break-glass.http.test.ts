import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { NO_STACK, runFerryInProcess } from "../support/cli.ts";
import { type ApiAnswer, callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";

let registry: TestRegistry;
let github: OidcIssuer;
let sso: OidcIssuer;
let ferry: TestFerry;
/** Signed, promoted into staging first. */
let digestA: string;
/** Signed, in the staging repository but never promoted into staging. */
let digestB: string;
/** In the staging repository, signed by no one. */
let unsigned: string;

type Resource = {
  id: string;
  state: string;
  gates: { name: string; status: string; reason: string }[];
  breakGlass?: { justification: string; at: string; reviewBy: string };
  review?: { by: { issuer: string; subject: string }; late: boolean; count: number; comment: string };
  requestedBy: { issuer: string; subject: string };
};

/** People of the SSO issuer, each with its own subject. */
const PEOPLE = {
  /** May break glass (incident) and is an approver (release-managers). */
  incident: { sub: "incident-lead", groups: ["incident", "release-managers"] },
  /** May promote (on-call) but not break glass. */
  onCall: { sub: "on-call-eng", groups: ["on-call"] },
  /** Approvers. */
  reviewer: { sub: "reviewer-1", groups: ["release-managers"] },
  reviewer2: { sub: "reviewer-2", groups: ["release-managers"] },
  /** Reads nothing of the app. */
  outsider: { sub: "outsider", groups: ["engineering"] },
} as const;

type Who = keyof typeof PEOPLE | "main" | "hotfix";

async function tokenOf(who: Who): Promise<string> {
  if (who === "main") return github.sign(githubClaims({ iss: github.url, aud: AUD }));
  if (who === "hotfix")
    return github.sign(githubClaims({ iss: github.url, aud: AUD }, { workflow: "hotfix" }));
  const person = PEOPLE[who];
  return sso.sign(humanClaims({ iss: sso.url, aud: AUD }, { sub: person.sub, groups: [...person.groups] }));
}

/** Every call with a new token: requests and reviews consume theirs. */
async function call(who: Who, method: string, url: string, body?: unknown): Promise<ApiAnswer> {
  return callApi(ferry, await tokenOf(who), method, url, body);
}

const promote = (who: Who, body: Record<string, unknown>) => call(who, "POST", "/v1/promotions", body);
const review = (who: Who, id: string, comment = "looked at it: the hotfix for INC-4211") =>
  call(who, "POST", `/v1/promotions/${id}/reviews`, { comment });

/** Long-polls until the promotion is in one of `states`. */
async function until(id: string, states: string[]): Promise<Resource> {
  for (let i = 0; i < 60; i++) {
    const { json } = await call("main", "GET", `/v1/promotions/${id}?wait=5s`);
    const p = json as unknown as Resource;
    if (states.includes(p.state)) return p;
  }
  throw new Error(`promotion ${id} did not reach ${states.join("/")}`);
}
const finished = (id: string) =>
  until(id, ["promoted", "failed", "rejected", "cancelled", "superseded", "expired"]);

const gateStatus = (p: Resource) =>
  Object.fromEntries(p.gates.map((g) => [g.name, `${g.status}:${g.reason}`]));

async function listIds(query: string): Promise<string[]> {
  const { status, json } = await call("reviewer", "GET", `/v1/promotions?${query}`);
  expect(status, JSON.stringify(json)).toBe(200);
  return (json.items as Resource[]).map((p) => p.id);
}

async function unreviewedGauge(): Promise<Record<string, number>> {
  const text = await (await fetch(`${ferry.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^ferry_break_glass_unreviewed\{overdue="(true|false)"\} (\d+)$/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

beforeAll(async () => {
  [registry, github, sso] = await Promise.all([startRegistry(), startOidcIssuer(), startOidcIssuer()]);
  const work = mkdtempSync(path.join(tmpdir(), "ferry-break-glass-"));
  const a = await pushSignedImage(registry, "staging/web", work, { bundle: false });
  const b = await pushSignedImage(registry, "staging/web", work, { bundle: false, keys: a.keys });
  digestA = a.digest;
  digestB = b.digest;
  const layout = await buildImageLayout(path.join(work, "unsigned"));
  unsigned = await pushImage(layout.dir, registry, "staging/web:unsigned");
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
        soak: "1h",
        // Frozen now and for long after: an ordinary promotion waits, a break-glass one does not.
        freeze: [{ from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z" }],
        require,
        promoters: {
          pipelines: [{ issuer: "github", claims: { ref: "refs/heads/main" } }],
          groups: ["on-call", "incident"],
        },
        approvals: {
          count: 1,
          groups: ["release-managers"],
          separationOfDuties: { requireLinkedIdentity: false },
        },
        breakGlass: {
          groups: ["incident"],
          pipelines: [{ issuer: "github", claims: { workflow: "hotfix" } }],
          reviewWithin: "4h",
        },
      },
      { name: "qa", after: "staging", require },
    ],
    apps: [
      {
        name: "web",
        images: {
          staging: `${registry.host}/staging/web`,
          production: `${registry.host}/prod/web`,
          qa: `${registry.host}/qa/web`,
        },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    promotion: { pollInterval: "200ms" },
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop(), sso?.stop()]);
});

describe("break-glass promotions over HTTP", () => {
  let staged: string;
  let ordinary: string;
  let byPipeline: string;
  let byPerson: string;
  let failedOne: string;
  const justification = "INC-4211: checkout is down, this is the fix";

  it("lets an ordinary promotion into production wait on soak, freeze and approvals", async () => {
    const first = await promote("main", { app: "web", digest: digestA, to: "staging" });
    expect(first.status, JSON.stringify(first.json)).toBe(201);
    staged = String(first.json.id);
    expect((await finished(staged)).state).toBe("promoted");

    const res = await promote("main", { app: "web", digest: digestA, to: "production" });
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    ordinary = String(res.json.id);
    const p = await until(ordinary, ["waiting"]);
    expect(gateStatus(p)).toMatchObject({
      order: "passed:promoted_upstream",
      soak: "waiting:soaking",
      freeze: "waiting:frozen",
      approvals: "waiting:awaiting_approvals",
    });
    expect(p.breakGlass).toBeUndefined();
  });

  it("refuses break-glass to whom the rule does not admit, each with its reason", async () => {
    const body = { app: "web", digest: digestA, to: "production", breakGlass: { justification } };
    const cases: [Who, Record<string, unknown>, number, string][] = [
      ["main", body, 403, "break_glass_not_allowed"], // a promoter pipeline, not the hotfix workflow
      ["onCall", body, 403, "break_glass_not_allowed"], // a promoter person, not in breakGlass.groups
      ["outsider", body, 403, "not_in_promoter_group"], // break-glass never widens who may promote
      ["hotfix", { ...body, to: "qa" }, 403, "break_glass_not_configured"],
      ["hotfix", { ...body, breakGlass: { justification: "  " } }, 400, "break_glass_justification_missing"],
    ];
    for (const [who, request, status, reason] of cases) {
      const res = await promote(who, request);
      expect(res.status, `${who} ${reason}: ${JSON.stringify(res.json)}`).toBe(status);
      expect(res.json.reason, who).toBe(reason);
    }
    const long = await promote("hotfix", { ...body, breakGlass: { justification: "x".repeat(1001) } });
    expect(long.status).toBe(400);
    expect(long.json.code).toBe("validation_failed");
    const refused = ferry.logs.filter((l) => l.msg === "break-glass promotion refused");
    expect(refused.length).toBeGreaterThanOrEqual(3);
  });

  it("refuses break-glass while an ordinary promotion of the digest waits, until it is cancelled", async () => {
    const body = { app: "web", digest: digestA, to: "production", breakGlass: { justification } };
    const refused = await promote("hotfix", body);
    expect(refused.status, JSON.stringify(refused.json)).toBe(409);
    expect(refused.json).toMatchObject({
      code: "conflict",
      reason: "unfinished_promotion",
      promotion: ordinary,
    });
    // The ordinary promotion is untouched by the refused request.
    const still = await call("main", "GET", `/v1/promotions/${ordinary}`);
    expect(still.json.state).toBe("waiting");
    expect(still.json.breakGlass).toBeUndefined();

    expect((await call("main", "POST", `/v1/promotions/${ordinary}/cancel`)).status).toBe(200);
    const res = await promote("hotfix", body);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    byPipeline = String(res.json.id);
    const p = await finished(byPipeline);
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    expect(gateStatus(p)).toEqual({
      source: "passed:source_found",
      order: "skipped:break_glass",
      soak: "skipped:break_glass",
      freeze: "skipped:break_glass",
      verification: "passed:verified",
      approvals: "skipped:break_glass",
    });
    expect(p.breakGlass?.justification).toBe(justification);
    expect(Date.parse(p.breakGlass!.reviewBy) - Date.parse(p.breakGlass!.at)).toBe(4 * 3600_000);
    expect(p.review).toBeUndefined();
  });

  it("is loud: a warn log with who, what and why, and a counter", async () => {
    const line = ferry.logs.find((l) => l.promotion === byPipeline && l.justification !== undefined);
    expect(line).toMatchObject({
      level: "warn",
      app: "web",
      environment: "production",
      digest: digestA,
      justification,
      requestedBy: { issuer: "github", subject: "repo:acme/web:ref:refs/heads/main" },
    });
    const text = await (await fetch(`${ferry.url}/metrics`)).text();
    expect(text).toMatch(/^ferry_break_glass_total\{app="web",environment="production"\} 1$/m);
  });

  it("skips order for a person's break-glass of a digest never promoted upstream", async () => {
    const res = await promote("incident", {
      app: "web",
      digest: digestB,
      to: "production",
      breakGlass: { justification: "INC-4212: roll forward" },
    });
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    byPerson = String(res.json.id);
    const p = await finished(byPerson);
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    expect(gateStatus(p).order).toBe("skipped:break_glass");
    expect(p.requestedBy).toMatchObject({ issuer: "sso", subject: PEOPLE.incident.sub });
  });

  it("never skips verification: break-glass of an unsigned digest fails", async () => {
    const res = await promote("hotfix", {
      app: "web",
      digest: unsigned,
      to: "production",
      breakGlass: { justification: "INC-4213: anything goes?" },
    });
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    failedOne = String(res.json.id);
    const p = await finished(failedOne);
    expect(p.state).toBe("failed");
    const verification = p.gates.find((g) => g.name === "verification")!;
    expect(verification.status).toBe("failed");
    expect(verification.reason, JSON.stringify(verification)).toBe("no_signatures_found");
    const env = await call("main", "GET", "/v1/apps/web/environments/production");
    expect((env.json.current as { digest: string }).digest).toBe(digestB);
  });

  it("lists the unreviewed break-glass promotions, and the gauge counts them", async () => {
    expect(await listIds("breakGlass=true&reviewed=false")).toEqual([failedOne, byPerson, byPipeline]);
    const ordinaryOnes = await listIds("breakGlass=false");
    expect(ordinaryOnes).toEqual(expect.arrayContaining([ordinary, staged]));
    expect(ordinaryOnes).not.toContain(byPipeline);
    expect(await listIds("reviewed=true")).toEqual([]);
    expect(await unreviewedGauge()).toEqual({ false: 3, true: 0 });
    const bad = await call("reviewer", "GET", "/v1/promotions?breakGlass=false&reviewed=false");
    expect(bad.status).toBe(400);
    expect((await call("reviewer", "GET", "/v1/promotions?breakGlass=yes")).status).toBe(400);
  });

  it("refuses reviews by the requester, a pipeline, a non-reader, of an ordinary promotion, and blank ones", async () => {
    const cases: [Who, string, number, string][] = [
      ["incident", byPerson, 403, "requester_cannot_approve"],
      ["hotfix", byPipeline, 403, "not_a_person"],
      ["onCall", byPerson, 403, "not_in_group"],
      ["reviewer", staged, 409, "not_break_glass"],
    ];
    for (const [who, id, status, reason] of cases) {
      const res = await review(who, id);
      expect(res.status, `${who}: ${JSON.stringify(res.json)}`).toBe(status);
      expect(res.json.reason, who).toBe(reason);
    }
    const hidden = await review("outsider", byPerson);
    expect(hidden.status).toBe(404);
    expect(hidden.json.code).toBe("not_found");
    const blank = await review("reviewer", byPerson, "   ");
    expect(blank.status).toBe(400);
    expect(blank.json.reason).toBe("review_comment_missing");
    expect(await listIds("breakGlass=true&reviewed=false")).toHaveLength(3);
  });

  it("accepts an eligible approver's review, which closes it; the same person again is idempotent", async () => {
    const first = await review("reviewer", byPerson);
    expect(first.status, JSON.stringify(first.json)).toBe(201);
    expect(first.json).toMatchObject({
      promotion: byPerson,
      by: { issuer: "sso", subject: PEOPLE.reviewer.sub },
      late: false,
    });
    const again = await review("reviewer", byPerson, "a second thought");
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);
    expect(again.json.comment).toBe(first.json.comment);
    const second = await review("reviewer2", byPerson, "agreed");
    expect(second.status).toBe(201);

    const p = (await call("reviewer", "GET", `/v1/promotions/${byPerson}`)).json as unknown as Resource;
    expect(p.review).toMatchObject({
      by: { issuer: "sso", subject: PEOPLE.reviewer.sub },
      late: false,
      count: 2,
      comment: "looked at it: the hotfix for INC-4211",
    });
    expect((await review("reviewer2", byPipeline)).status).toBe(201);

    expect(await listIds("breakGlass=true&reviewed=false")).toEqual([failedOne]);
    expect(await listIds("breakGlass=true&reviewed=true")).toEqual([byPerson, byPipeline]);
    expect(await unreviewedGauge()).toEqual({ false: 1, true: 0 });
  });

  it("works from the CLI: ferry promote --break-glass, ferry promotions list --break-glass --unreviewed", async () => {
    const cli = async (args: string[]) => {
      const run = await runFerryInProcess(args, {
        FERRY_SERVER: ferry.url,
        FERRY_TOKEN: await tokenOf("hotfix"),
      });
      expect(run.err).not.toMatch(NO_STACK);
      return run;
    };
    const promoteArgs = ["promote", "--app", "web", "--digest", digestA, "--to", "production"];
    const blank = await cli([...promoteArgs, "--break-glass", " "]);
    expect(blank.code).toBe(2);
    expect(blank.err).toContain("--break-glass needs a justification");

    const run = await cli([
      ...promoteArgs,
      "--break-glass",
      "INC-4214: from the CLI",
      "--wait=60s",
      "--json",
    ]);
    expect(run.code, run.err).toBe(0);
    const p = JSON.parse(run.out) as Resource;
    expect(p.state).toBe("promoted");
    expect(p.breakGlass?.justification).toBe("INC-4214: from the CLI");

    const open = await cli(["promotions", "list", "--break-glass", "--unreviewed", "--json"]);
    expect(open.code, open.err).toBe(0);
    expect((JSON.parse(open.out).items as Resource[]).map((i) => i.id)).toEqual([p.id, failedOne]);
    const all = await cli(["promotions", "list", "--break-glass", "--json"]);
    expect((JSON.parse(all.out).items as Resource[]).map((i) => i.id)).toEqual([
      p.id,
      failedOne,
      byPerson,
      byPipeline,
    ]);
  });
});
