import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { NO_STACK, runFerryInProcess } from "../support/cli.ts";
import { type ApiAnswer, callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

/**
 * The approvals matrix (issue #12) against a running Ferry, with real tokens from three loopback
 * issuers: `github` (pipelines; the actor is octocat, id 12), and two SSO issuers with groups and
 * link claims, `okta` (`github_id`) and `entra` (`extension_github`). Each environment holds one
 * scenario, so the promotions do not wait on each other.
 */

const AUD = "https://ferry.test";
const ACTOR_ID = "12";

let registry: TestRegistry;
let github: OidcIssuer;
let okta: OidcIssuer;
let entra: OidcIssuer;
let ferry: TestFerry;
let signed: SignedImage;
let second: SignedImage;
let work: string;
const issued: string[] = [];

type Vote = {
  issuer: string;
  subject: string;
  decision: string;
  counts: boolean;
  whyNot?: string;
  comment?: string;
};
type Resource = {
  id: string;
  state: string;
  gates: { name: string; status: string; reason: string; message?: string }[];
  approvals?: Vote[];
  vote?: Vote;
  result?: { reason: string; message: string; by?: { issuer: string; subject: string }; comment?: string };
};

/** A person: an SSO token with groups and, when given, the issuer's link claim. */
interface Person {
  issuer: "okta" | "entra";
  sub: string;
  groups: string[];
  github?: string | number;
}

async function personToken(p: Person): Promise<string> {
  const issuer = p.issuer === "okta" ? okta : entra;
  const link = p.issuer === "okta" ? "github_id" : "extension_github";
  const t = await issuer.sign(
    humanClaims(
      { iss: issuer.url, aud: AUD },
      {
        sub: p.sub,
        name: `Person ${p.sub}`,
        groups: p.groups,
        ...(p.github === undefined ? {} : { [link]: p.github }),
      },
    ),
  );
  issued.push(t);
  return t;
}

async function pipelineToken(): Promise<string> {
  const t = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
  issued.push(t);
  return t;
}

const release = (sub: string, github: string | number = `gh-${sub}`): Person => ({
  issuer: "okta",
  sub,
  groups: ["release"],
  github,
});

async function vote(
  who: Person | "pipeline",
  id: string,
  decision: string,
  comment?: string,
): Promise<ApiAnswer> {
  const token = who === "pipeline" ? await pipelineToken() : await personToken(who);
  return callApi(ferry, token, "POST", `/v1/promotions/${id}/approvals`, {
    decision,
    ...(comment === undefined ? {} : { comment }),
  });
}

async function refused(
  who: Person | "pipeline",
  id: string,
  reason: string,
  decision = "approve",
): Promise<void> {
  const answer = await vote(who, id, decision, decision === "reject" ? "no" : undefined);
  expect(answer.status, JSON.stringify(answer.json)).toBe(403);
  expect(answer.json).toMatchObject({ code: "forbidden", reason });
  // The refusal names the rule, never the requester or the pipeline's actor.
  expect(JSON.stringify(answer.json)).not.toMatch(/octocat|repo:acme/i);
}

async function approved(who: Person, id: string): Promise<Resource> {
  const answer = await vote(who, id, "approve");
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer.json as unknown as Resource;
}

async function get(id: string, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  return callApi(ferry, await pipelineToken(), "GET", `/v1/promotions/${id}?wait=5s`, undefined, headers);
}

/** Long-polls until `done` holds of the promotion (or it finished, which `done` may accept). */
async function until(id: string, done: (p: Resource) => boolean): Promise<Resource> {
  let etag: string | undefined;
  for (let i = 0; i < 40; i++) {
    const answer = await get(id, etag === undefined ? {} : { "if-none-match": etag });
    const p = answer.json as unknown as Resource;
    if (done(p)) return p;
    if (!["pending", "waiting", "running"].includes(p.state))
      throw new Error(`finished: ${JSON.stringify(p)}`);
    etag = answer.headers.get("etag") ?? undefined;
  }
  throw new Error(`promotion ${id} never got there`);
}

const approvalsGate = (p: Resource) => p.gates.find((g) => g.name === "approvals");
const waitingForApprovals = (p: Resource) => approvalsGate(p)?.status === "waiting";
const finished = (p: Resource) => !["pending", "waiting", "running"].includes(p.state);

async function promote(to: string, token?: string, digest = signed.digest): Promise<string> {
  const answer = await callApi(ferry, token ?? (await pipelineToken()), "POST", "/v1/promotions", {
    app: "web",
    digest,
    to,
  });
  expect(answer.status, JSON.stringify(answer.json)).toBe(201);
  return String(answer.json.id);
}

function config(policyExpiry: string, fewer = 2): Record<string, unknown> {
  const require = { signature: { authorities: ["ci"] } };
  const twoOf = (extra: Record<string, unknown> = {}) => ({ count: 2, groups: ["release"], ...extra });
  const names = [
    "pair",
    "solo",
    "duties",
    "loose",
    "quick",
    "policy",
    "rejecting",
    "plain",
    "production",
    "fewer",
  ];
  return {
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    store: { sqlite: path.join(work, "ferry.db") },
    keys: { signing: path.join(work, "signing.pem") },
    issuers: [
      loopbackIssuerConfig("github", github, AUD, { platform: "github" }),
      loopbackIssuerConfig("okta", okta, AUD, {
        kind: "human",
        groupsClaim: "groups",
        links: { github: "github_id" },
      }),
      loopbackIssuerConfig("entra", entra, AUD, {
        kind: "human",
        groupsClaim: "groups",
        links: { github: "extension_github" },
      }),
    ],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ci", key: signed.keys.publicKeyPath }] },
    environments: [
      {
        name: "pair",
        require,
        approvals: twoOf({ groups: ["release", "security"], requireEach: ["security"] }),
      },
      {
        name: "solo",
        require,
        approvals: { count: 1, groups: ["release"] },
        promoters: {
          pipelines: [{ issuer: "github", claims: { ref: "refs/heads/main" } }],
          groups: ["on-call"],
        },
      },
      { name: "duties", require, approvals: twoOf() },
      {
        name: "loose",
        require,
        approvals: { count: 1, groups: ["release"], separationOfDuties: { requireLinkedIdentity: false } },
      },
      { name: "quick", require, approvals: twoOf({ expiresAfter: "1s" }) },
      { name: "policy", require, approvals: twoOf({ expiresAfter: policyExpiry }) },
      { name: "rejecting", require, approvals: twoOf() },
      { name: "plain", require },
      { name: "production", require, approvals: twoOf() },
      { name: "fewer", require, approvals: { count: fewer, groups: ["release"] } },
    ],
    apps: [
      {
        name: "web",
        images: Object.fromEntries(names.map((n) => [n, `${registry.host}/acme/web`])),
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    promotion: { pollInterval: "200ms" },
  };
}

beforeAll(async () => {
  [registry, github, okta, entra] = await Promise.all([
    startRegistry({ auth: "none" }),
    startOidcIssuer(),
    startOidcIssuer(),
    startOidcIssuer(),
  ]);
  work = mkdtempSync(path.join(tmpdir(), "ferry-approvals-"));
  signed = await pushSignedImage(registry, "acme/web", work);
  second = await pushSignedImage(registry, "acme/web", work, { keys: signed.keys });
  ferry = await startTestFerry(config("24h"));
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop(), okta?.stop(), entra?.stop()]);
});

describe("approvals: the rules, over HTTP with real tokens", () => {
  it("waits with too few approvers, needs one from each requireEach group, then promotes", async () => {
    const id = await promote("pair");
    const r1 = release("r1");
    const first = await approved(r1, id);
    expect(first.vote).toMatchObject({ issuer: "okta", subject: "r1", decision: "approve", counts: true });
    let p = await until(id, (x) => approvalsGate(x)?.message?.includes("1 more") === true);
    expect(approvalsGate(p)).toMatchObject({ status: "waiting", reason: "awaiting_approvals" });
    expect(approvalsGate(p)?.message).toContain("one from each of security");

    // The inbox of a security approver shows it, with what it needs; the voter's does not.
    const s1: Person = { issuer: "okta", sub: "s1", groups: ["security"], github: "gh-s1" };
    const inbox = await callApi(ferry, await personToken(s1), "GET", "/v1/approvals/pending");
    expect(inbox.status).toBe(200);
    const item = (inbox.json.items as { id: string; needs: unknown }[]).find((i) => i.id === id);
    expect(item?.needs).toEqual({ more: 1, groups: ["security"] });
    const mine = await callApi(ferry, await personToken(r1), "GET", "/v1/approvals/pending");
    expect((mine.json.items as { id: string }[]).map((i) => i.id)).not.toContain(id);

    await approved(release("r2"), id);
    p = await until(
      id,
      (x) => approvalsGate(x)?.message?.startsWith("pair needs one from each of security") === true,
    );
    expect(p.state).toBe("waiting");

    await approved(s1, id);
    p = await until(id, finished);
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    expect(approvalsGate(p)).toMatchObject({ status: "passed", reason: "approved" });
    expect(p.approvals?.map((a) => [a.subject, a.counts])).toEqual([
      ["r1", true],
      ["r2", true],
      ["s1", true],
    ]);
    // Approval of a finished promotion.
    await refused(release("r3"), id, "promotion_finished");
  });

  it("refuses the wrong group, the pipeline actor under SSO identities, unlinked people and pipelines", async () => {
    const id = await promote("duties");
    // On-call people may read web's promotions (they promote `solo`) but approve none of `duties`.
    await refused({ issuer: "okta", sub: "e1", groups: ["on-call"], github: "gh-e1" }, id, "not_in_group");
    // Someone who may not read the promotion gets the answer a missing one gets.
    const outsider = await vote(
      { issuer: "okta", sub: "e2", groups: ["engineering"], github: "gh-e2" },
      id,
      "approve",
    );
    expect([outsider.status, outsider.json.code]).toEqual([404, "not_found"]);
    await refused(release("octo-okta", ACTOR_ID), id, "pipeline_actor_cannot_approve");
    await refused(release("octo-okta-num", Number(ACTOR_ID)), id, "pipeline_actor_cannot_approve");
    await refused(
      { issuer: "entra", sub: "octo-entra", groups: ["release"], github: "OctoCat" },
      id,
      "pipeline_actor_cannot_approve",
    );
    await refused({ issuer: "okta", sub: "nolink", groups: ["release"] }, id, "sod_unverifiable");
    await refused("pipeline", id, "not_a_person");

    // The same person twice: the same identity is idempotent, another identity with the same link counts once.
    const r1 = release("r1", "ada");
    await approved(r1, id);
    const again = await approved(r1, id);
    expect(again.approvals).toHaveLength(1);
    const twin = await approved(
      { issuer: "entra", sub: "ada-entra", groups: ["release"], github: "ADA" },
      id,
    );
    expect(twin.vote).toMatchObject({ counts: false, whyNot: "same_person" });
    let p = await until(id, (x) => approvalsGate(x)?.message?.includes("1 more") === true);
    expect(p.state).toBe("waiting");

    await approved(release("r2"), id);
    p = await until(id, finished);
    expect(p.state).toBe("promoted");
  });

  it("refuses the person who asked, under either identity; another approver promotes", async () => {
    const requester: Person = {
      issuer: "okta",
      sub: "oncall-1",
      groups: ["on-call", "release"],
      github: "grace",
    };
    const id = await promote("solo", await personToken(requester));
    await refused(requester, id, "requester_cannot_approve");
    await refused(
      { issuer: "entra", sub: "grace-entra", groups: ["release"], github: "Grace" },
      id,
      "same_person",
    );
    await approved(release("r1"), id);
    expect((await until(id, finished)).state).toBe("promoted");
  });

  it("admits an unlinked approver where requireLinkedIdentity is false", async () => {
    const id = await promote("loose");
    await approved({ issuer: "okta", sub: "nolink", groups: ["release"] }, id);
    expect((await until(id, finished)).state).toBe("promoted");
  });

  it("stops counting an approval older than expiresAfter, and the gate says so", async () => {
    const id = await promote("quick");
    await approved(release("r1"), id);
    // expiresAfter is 1s: once more than that has passed, r1's approval is expired whenever it is looked at.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const later = await approved(release("r2"), id);
    expect(later.approvals?.find((a) => a.subject === "r1")).toMatchObject({
      counts: false,
      whyNot: "expired",
    });
    const p = await until(id, (x) => approvalsGate(x)?.message?.includes("expired") === true);
    expect(p.state).toBe("waiting");
    expect(approvalsGate(p)?.reason).toBe("awaiting_approvals");
  });

  it("rejects after an approval: the promotion ends rejected with who and why; no vote after", async () => {
    const id = await promote("rejecting");
    const r1 = release("r1");
    await approved(r1, id);
    const blank = await vote(r1, id, "reject");
    expect(blank.status).toBe(400);
    expect(blank.json.reason).toBe("comment_required");
    const rejected = await vote(r1, id, "reject", "the migration is not reversible");
    expect(rejected.status, JSON.stringify(rejected.json)).toBe(200);
    const p = rejected.json as unknown as Resource;
    expect(p.state).toBe("rejected");
    expect(p.result).toMatchObject({
      reason: "rejected",
      by: { issuer: "okta", subject: "r1" },
      comment: "the migration is not reversible",
    });
    expect(p.vote).toMatchObject({ decision: "reject", counts: false, whyNot: "rejected" });
    await refused(release("r2"), id, "promotion_finished");
    expect((await get(id)).json.state).toBe("rejected");
  });

  it("refuses votes where no approvals are configured", async () => {
    const id = await promote("plain");
    await refused(release("r1"), id, "no_approvals_configured");
  });

  it("voids approvals given under an earlier policy (Ferry restarted with changed rules)", async () => {
    const id = await promote("policy");
    await approved(release("r1"), id);
    await until(id, (x) => approvalsGate(x)?.message?.includes("1 more") === true);
    await ferry.close();
    ferry = await startTestFerry(config("48h"));

    const after = await approved(release("r2"), id);
    expect(after.approvals?.find((a) => a.subject === "r1")).toMatchObject({
      counts: false,
      whyNot: "policy_changed",
    });
    let p = await until(id, (x) => approvalsGate(x)?.message?.includes("earlier policy") === true);
    expect(p.state).toBe("waiting");

    // Approving again under today's policy counts.
    const renewed = await approved(release("r1"), id);
    expect(renewed.vote).toMatchObject({ subject: "r1", counts: true });
    p = await until(id, finished);
    expect(p.state).toBe("promoted");
  });

  it("decides waiting promotions again at start: approvals voided by changed rules show without a vote", async () => {
    const id = await promote("fewer");
    await approved(release("f1"), id);
    await until(id, (x) => approvalsGate(x)?.message?.includes("1 more") === true);
    await ferry.close();
    // `policy` keeps the rules the test before left it with; `fewer` now asks one approval.
    ferry = await startTestFerry(config("48h", 1));
    // No vote and no recheck due for a day: only the start's fresh look can say this.
    const p = await until(id, (x) => approvalsGate(x)?.message?.includes("earlier policy") === true);
    expect(p.state).toBe("waiting");
    expect(p.approvals?.find((a) => a.subject === "f1")).toMatchObject({
      counts: false,
      whyNot: "policy_changed",
    });
  });
});

describe("approvals end to end with the CLI", () => {
  async function cli(args: string[], who: Person) {
    const file = path.join(work, `token-${who.sub}-${issued.length}`);
    writeFileSync(file, await personToken(who));
    const run = await runFerryInProcess([...args, "--token-file", file], { FERRY_SERVER: ferry.url });
    expect(run.err).not.toMatch(NO_STACK);
    for (const t of issued) expect(run.out + run.err).not.toContain(t);
    return run;
  }

  it("a production promotion waits, two approvals arrive through ferry approve, it is promoted", async () => {
    const id = await promote("production");
    await until(id, waitingForApprovals);
    const pending = await cli(["approvals", "pending"], release("ada"));
    expect(pending.code, pending.err).toBe(0);
    expect(pending.out).toContain(id);
    expect(pending.out).toContain("2 more from release");

    const one = await cli(["approve", id, "--comment", "release notes read"], release("ada"));
    expect(one.code, one.err).toBe(0);
    expect(one.out).toContain(`promotion ${id}: approved`);
    const two = await cli(["approve", id], release("bob"));
    expect(two.code, two.err).toBe(0);
    const p = await until(id, finished);
    expect(p.state).toBe("promoted");
    expect(p.approvals?.map((a) => a.subject)).toEqual(["ada", "bob"]);
    expect(p.approvals?.[0]?.comment).toBe("release notes read");
  });

  it("a second one is rejected through ferry reject; a refusal exits 2 with its reason", async () => {
    const id = await promote("production", undefined, second.digest);
    await until(id, waitingForApprovals);
    const noComment = await cli(["reject", id], release("ada"));
    expect(noComment.code).toBe(2);
    const actor = await cli(["approve", id], release("octo", ACTOR_ID));
    expect(actor.code).toBe(2);
    expect(actor.err).toContain("pipeline_actor_cannot_approve");
    const rejected = await cli(["reject", id, "--comment", "wrong build"], release("ada"));
    expect(rejected.code, rejected.err).toBe(0);
    expect(rejected.out).toContain("rejected");
    const p = (await get(id)).json as unknown as Resource;
    expect(p).toMatchObject({ state: "rejected", result: { reason: "rejected", comment: "wrong build" } });
  });
});
