import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { NO_STACK, runFerry, runFerryInProcess } from "../support/cli.ts";
import { type CosignKeyPair, generateKeyPair, sign } from "../support/cosign.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { LOOPBACK } from "../support/net.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

/**
 * `ferry promote`, `ferry promotions …` and `ferry apps` against a running Ferry: a real registry,
 * a real loopback OIDC issuer, images signed by cosign, and (for the GitHub Actions token source) a
 * loopback stand-in for the runner's token endpoint that mints from that issuer.
 */

const AUD = "https://ferry.test";
const REQUEST_TOKEN = "runner-request-token-5f2e";

let registry: TestRegistry;
let github: OidcIssuer;
let ferry: TestFerry;
let keys: CosignKeyPair;
let dir: string;
let signed: string;
let unsigned: string;
let runner: Server;
let runnerUrl: string;
const issuedTokens: string[] = [];

async function token(over: Record<string, unknown> = {}): Promise<string> {
  const t = await github.sign(githubClaims({ iss: github.url, aud: AUD }, over));
  issuedTokens.push(t);
  return t;
}

async function pushed(repo: string, name: string): Promise<string> {
  const layout = await buildImageLayout(path.join(dir, name), {});
  return pushImage(layout.dir, registry, `${repo}:${name}`);
}

/** Runs the CLI in this process with a fresh pipeline token in FERRY_TOKEN (POSTs consume one). */
async function ferryCli(args: string[], env: Record<string, string | undefined> = {}) {
  const { code, out, err } = await runFerryInProcess(args, {
    FERRY_SERVER: ferry.url,
    FERRY_TOKEN: await token(),
    ...env,
  });
  expect(err).not.toMatch(NO_STACK);
  for (const t of issuedTokens) expect(out + err).not.toContain(t);
  return { code, out, err };
}

beforeAll(async () => {
  [registry, github] = await Promise.all([startRegistry({ auth: "none" }), startOidcIssuer()]);
  dir = mkdtempSync(path.join(tmpdir(), "ferry-cli-promote-"));
  keys = await generateKeyPair(path.join(dir, "keys"));
  signed = await pushed("staging/web", "v1");
  unsigned = await pushed("staging/web", "v2");
  const res = await sign(`${registry.host}/staging/web@${signed}`, keys.privateKeyPath);
  expect(res.code, res.stderr).toBe(0);

  const require = { signature: { authorities: ["ci"] } };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ci", key: keys.publicKeyPath }] },
    environments: [
      { name: "staging", require },
      { name: "production", after: "staging", soak: "1h", require },
    ],
    apps: [
      {
        name: "web",
        images: { staging: `${registry.host}/staging/web`, production: `${registry.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
  });

  // GitHub Actions' token endpoint: a token from the issuer for the audience asked, only for the
  // runner's request token.
  runner = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.headers.authorization !== `bearer ${REQUEST_TOKEN}`) {
      res.writeHead(401).end();
      return;
    }
    token({ aud: url.searchParams.get("audience") }).then((value) =>
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ value })),
    );
  });
  await new Promise<void>((resolve) => runner.listen(0, LOOPBACK, resolve));
  runnerUrl = `http://${LOOPBACK}:${(runner.address() as AddressInfo).port}/token?api-version=2.0`;
});

afterAll(async () => {
  await ferry?.close();
  await new Promise<void>((resolve) => (runner ? runner.close(() => resolve()) : resolve()));
  await Promise.all([registry?.stop(), github?.stop()]);
});

const promote = (digest: string, to: string, ...extra: string[]) => [
  "promote",
  "--app",
  "web",
  "--digest",
  digest,
  "--to",
  to,
  ...extra,
];

let stagingId: string;
let waitingId: string;

describe("ferry promote", () => {
  it("--wait into staging: one line per gate and step change, then `promoted`, exit 0 (GitHub Actions token)", async () => {
    const run = await ferryCli(promote(signed, "staging", "--wait=60s", "--idempotency-key", "ci-run-1"), {
      FERRY_TOKEN: undefined,
      ACTIONS_ID_TOKEN_REQUEST_URL: runnerUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
      FERRY_AUDIENCE: AUD,
    });
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    const lines = run.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^promotion (\S+): web sha256:[0-9a-f]{12} staging: (pending|running|promoted)$/,
    );
    stagingId = /^promotion (\S+):/.exec(lines[0]!)![1]!;
    const once = (pattern: RegExp) => expect(lines.filter((l) => pattern.test(l))).toHaveLength(1);
    once(/^ {2}gate source: passed \(source_found\)/);
    once(/^ {2}gate verification: passed \(verified\)/);
    once(/^ {2}step copy: (done|skipped)/);
    once(/^ {2}step record: done/);
    expect(lines).toContain("state: promoted");
    expect(lines.at(-1)).toBe(`promoted web ${signed.slice(0, 19)} to staging (promotion ${stagingId})`);
    expect(ferry.logText()).not.toContain(REQUEST_TOKEN);
  });

  it("the same request and idempotency key again: the same, finished promotion, exit 0", async () => {
    const run = await ferryCli(promote(signed, "staging", "--json", "--idempotency-key", "ci-run-1"));
    expect(run.code).toBe(0);
    const resource = JSON.parse(run.out) as { id: string; state: string };
    expect(resource).toMatchObject({ id: stagingId, state: "promoted" });
    expect(run.err).toMatch(/^promotion \S+: web .* staging: promoted\n/);
  });

  it("a digest that fails verification ends `failed`: exit 1 with the gate's reason", async () => {
    const run = await ferryCli(promote(unsigned, "staging", "--wait=60s"));
    expect(run.err).toBe("");
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/ {2}gate verification: failed \(no_signatures_found\)/);
    expect(run.out.trimEnd().split("\n").at(-1)).toMatch(
      /^failed web sha256:[0-9a-f]{12} to staging \(promotion \S+\)/,
    );
  });

  it("a refused request (unknown app) is a 4xx problem: exit 2, code, detail and request id on one line", async () => {
    const run = await ferryCli(["promote", "--app", "nope", "--digest", signed, "--to", "staging"]);
    expect(run.code).toBe(2);
    expect(run.out).toBe("");
    expect(run.err).toMatch(/^ferry: HTTP 404 not_found: .+ \(.*request id [\w-]+\)\n$/);
  });

  it("a token the server does not accept: exit 2 with the reason, the token not printed", async () => {
    const run = await ferryCli(promote(signed, "staging"), {
      FERRY_TOKEN: await token({ aud: "someone-else" }),
    });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/^ferry: HTTP 401 unauthenticated: .*reason audience_mismatch/);
  });

  it("waiting on soak with --wait=1s: the gate's `until`, then exit 3", async () => {
    const run = await ferryCli(promote(signed, "production", "--wait=1s"));
    expect(run.err).toBe("");
    expect(run.code).toBe(3);
    expect(run.out).toMatch(/ {2}gate soak: waiting until \d{4}-\d\d-\d\dT[\d:.]+Z \(soaking\)/);
    const last = run.out.trimEnd().split("\n").at(-1)!;
    expect(last).toMatch(
      /^still waiting web sha256:[0-9a-f]{12} to production \(promotion (\S+)\); waiting on soak until /,
    );
    waitingId = /\(promotion (\S+)\)/.exec(last)![1]!;
  });

  it("without --wait: prints the created state and exits 3 while unfinished", async () => {
    const run = await ferryCli(promote(signed, "production"));
    expect(run.code).toBe(3);
    // The same (app, digest, to) while one is unfinished: the same promotion.
    expect(run.out).toContain(`(promotion ${waitingId})`);
  });
});

describe("ferry promotions and ferry apps", () => {
  it("list: the promotions, filterable by app, environment and state", async () => {
    const all = await ferryCli(["promotions", "list", "--app", "web"]);
    expect(all.code).toBe(0);
    const rows = all.out.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^ID\s+APP\s+TO\s+STATE\s+DIGEST\s+CREATED$/);
    expect(rows).toHaveLength(4);
    const waiting = await ferryCli([
      "promotions",
      "list",
      "--env",
      "production",
      "--state",
      "waiting",
      "--json",
    ]);
    expect(waiting.code).toBe(0);
    const page = JSON.parse(waiting.out) as { items: { id: string }[] };
    expect(page.items.map((p) => p.id)).toEqual([waitingId]);
    const bad = await ferryCli(["promotions", "list", "--state", "sleeping"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(
      /^ferry: HTTP 400 validation_failed: unknown state "sleeping".*reason invalid_query/,
    );
  });

  it("show: gates, steps and who asked", async () => {
    const run = await ferryCli(["promotions", "show", stagingId]);
    expect(run.code).toBe(0);
    expect(run.out).toMatch(
      new RegExp(`^promotion ${stagingId}: web sha256:[0-9a-f]{12} staging: promoted\\n`),
    );
    expect(run.out).toContain(`  digest: ${signed}`);
    expect(run.out).toMatch(/ {2}requested by: pipeline repo:acme\/web:ref:refs\/heads\/main/);
    expect(run.out).toContain("  step copy: ");
    const missing = await ferryCli(["promotions", "show", "no-such-id"]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^ferry: HTTP 404 not_found/);
  });

  it("cancel: a waiting promotion ends cancelled; a finished one is a 409, exit 2", async () => {
    const run = await ferryCli(["promotions", "cancel", waitingId]);
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    expect(run.out).toBe(`promotion ${waitingId}: cancelled\n`);
    const again = await ferryCli(["promotions", "cancel", waitingId]);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/^ferry: HTTP 409 conflict: /);
    const shown = await ferryCli(["promotions", "show", waitingId, "--json"]);
    expect((JSON.parse(shown.out) as { state: string }).state).toBe("cancelled");
  });

  it("apps: each environment with its current digest", async () => {
    const run = await ferryCli(["apps"]);
    expect(run.code).toBe(0);
    const lines = run.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^APP\s+ENVIRONMENT\s+REPOSITORY\s+CURRENT\s+SINCE\s+PROMOTION$/);
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^web\\s+staging\\s+\\S+/staging/web\\s+${signed.slice(0, 19)}\\s+\\S+\\s+${stagingId}$`),
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^web\s+production\s+\S+\/prod\/web\s+-$/));
    const json = await ferryCli(["apps", "--json"]);
    const data = JSON.parse(json.out) as {
      apps: { name: string; environments: { current?: { digest: string } }[] }[];
    };
    expect(data.apps[0]!.environments[0]!.current?.digest).toBe(signed);
  });
});

describe("a real `ferry` process", () => {
  it("exits with the promotion's code: 3 while it waits on soak, 1 once cancelled", async () => {
    const env = { FERRY_SERVER: ferry.url };
    const waiting = await runFerry(promote(signed, "production", "--idempotency-key", "proc-1"), {
      env: { ...env, FERRY_TOKEN: await token() },
    });
    expect(waiting.stderr).toBe("");
    expect(waiting.code).toBe(3);
    const id = /\(promotion (\S+)\)/.exec(waiting.stdout)![1]!;
    const cancelled = await runFerry(["promotions", "cancel", id], {
      env: { ...env, FERRY_TOKEN: await token() },
    });
    expect(cancelled.code).toBe(0);
    const again = await runFerry(promote(signed, "production", "--idempotency-key", "proc-1", "--wait"), {
      env: { ...env, FERRY_TOKEN: await token() },
    });
    expect(again.code).toBe(1);
    expect(again.stdout.trimEnd().split("\n").at(-1)).toMatch(/^cancelled web /);
    expect(again.stderr).not.toMatch(NO_STACK);
  });
});

describe("token sources against a running Ferry", () => {
  it("--token-file is read and sent; FERRY_TOKEN then does not matter", async () => {
    const file = path.join(dir, "token");
    writeFileSync(file, `${await token()}\n`);
    const run = await ferryCli(["apps", "--token-file", file], { FERRY_TOKEN: "not.a.token" });
    expect(run.code).toBe(0);
  });
});
