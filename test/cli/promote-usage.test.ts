import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NO_STACK, runFerryInProcess } from "../support/cli.ts";
import { LOOPBACK } from "../support/net.ts";

const DIGEST = `sha256:${"0a".repeat(32)}`;
const TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2FnZSJ9.c2ln";

// A loopback listener that records what reaches it: the usage errors below must be caught before
// any request, and the token must never be printed.
let server: Server;
let url: string;
let seen: IncomingMessage[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  url = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  seen = [];
});

async function ferry(args: string[], env: Record<string, string> = {}) {
  const { code, out, err } = await runFerryInProcess(args, env);
  expect(err).not.toMatch(NO_STACK);
  expect(out + err).not.toContain(TOKEN);
  return { code, out, err };
}

const promote = (...extra: string[]) => ["promote", "--app", "web", "--to", "production", ...extra];

describe("ferry promote: usage errors exit 2 before any request", () => {
  it("a tag instead of a digest", async () => {
    const run = await ferry(promote("--digest", "v1.2.3", "--server", url), { FERRY_TOKEN: TOKEN });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/--digest "v1.2.3" is not a digest.*tags are refused/);
  });

  it("--rollback without --reason", async () => {
    const run = await ferry(promote("--digest", DIGEST, "--rollback", "--server", url), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/--rollback needs --reason/);
  });

  it("a --wait that is not a duration", async () => {
    const run = await ferry(promote("--digest", DIGEST, "--wait=soon", "--server", url), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/--wait "soon" is not a duration/);
  });

  it("an idempotency key that is no header value", async () => {
    const run = await ferry(promote("--digest", DIGEST, "--idempotency-key", "a\nb", "--server", url), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/--idempotency-key must be 1-200 printable ASCII characters/);
  });

  it("a missing required flag", async () => {
    const run = await ferry(["promote", "--digest", DIGEST, "--to", "production", "--server", url]);
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/required option '--app <name>' not specified/);
  });

  it("no server: names --server and FERRY_SERVER", async () => {
    const run = await ferry(promote("--digest", DIGEST), { FERRY_TOKEN: TOKEN });
    expect(run.code).toBe(2);
    expect(run.err).toBe("ferry: no server: pass --server URL or set FERRY_SERVER\n");
  });

  it("plain http to a host that is not loopback: the token would travel in clear", async () => {
    const run = await ferry(promote("--digest", DIGEST, "--server", "http://ferry.example.com"), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/must be https/);
  });

  it("no token: one line naming every way to give one", async () => {
    const run = await ferry(promote("--digest", DIGEST), { FERRY_SERVER: url });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(
      /^ferry: no token found: pass --token-file FILE or set FERRY_TOKEN; .*FERRY_ID_TOKEN.*id-token: write/,
    );
  });

  it("every other command checks its flags the same way", async () => {
    const list = await ferry(["promotions", "list", "--limit", "0", "--server", url], { FERRY_TOKEN: TOKEN });
    expect(list.code).toBe(2);
    expect(list.err).toMatch(/--limit "0" is not a positive integer/);
    const apps = await ferry(["apps"], { FERRY_TOKEN: TOKEN });
    expect(apps.code).toBe(2);
    expect(apps.err).toMatch(/no server/);
  });

  it("none of them sent a request", () => {
    expect(seen).toHaveLength(0);
  });
});

describe("ferry promote: operational errors exit 2", () => {
  it("a 5xx answer prints its status and request id on one line", async () => {
    const run = await ferry(promote("--digest", DIGEST, "--server", url), { FERRY_TOKEN: TOKEN });
    expect(run.code).toBe(2);
    expect(run.err).toBe("ferry: HTTP 500 (request id none)\n");
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });
});

describe("ferry promote --wait: a transient failure while following", () => {
  const resource = (state: string, version: number) => ({
    id: "p-1",
    app: "web",
    digest: DIGEST,
    from: "staging",
    to: "production",
    state,
    rollback: false,
    gates: [],
    steps: [{ name: "copy", status: state === "promoted" ? "done" : "running", attempts: 1 }],
    version,
  });
  let flaky: Server;
  let flakyUrl: string;
  let answers: { status: number; body: unknown }[] = [];
  const asked: string[] = [];

  beforeAll(async () => {
    // Scripted answers in order: the client's retry is what is under test, not Ferry.
    flaky = createServer((req, res) => {
      asked.push(`${req.method} ${req.url} ${req.headers["if-none-match"] ?? "-"}`);
      const next = answers.shift() ?? { status: 500, body: {} };
      const body = next.body as { version?: number };
      res
        .writeHead(next.status, {
          "content-type": next.status < 400 ? "application/json" : "application/problem+json",
          ...(body.version === undefined ? {} : { etag: `"${body.version}"` }),
        })
        .end(JSON.stringify(next.body));
    });
    await new Promise<void>((resolve) => flaky.listen(0, LOOPBACK, resolve));
    flakyUrl = `http://${LOOPBACK}:${(flaky.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => flaky.close(() => resolve()));
  });

  it("retries a 503 with backoff, sends the last ETag, and ends with the promotion's exit code", async () => {
    answers = [
      { status: 201, body: resource("running", 3) },
      { status: 503, body: { code: "unavailable", detail: "draining", requestId: "r1" } },
      { status: 200, body: resource("promoted", 5) },
    ];
    const run = await ferry(promote("--digest", DIGEST, "--server", flakyUrl, "--wait=1m"), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(0);
    expect(run.err).toBe("ferry: HTTP 503 unavailable: draining (request id r1); retrying (1/5)\n");
    expect(run.out.trimEnd().split("\n")).toEqual([
      "promotion p-1: web sha256:0a0a0a0a0a0a staging → production: running",
      "  step copy: running (attempt 1)",
      "state: promoted",
      "  step copy: done",
      "promoted web sha256:0a0a0a0a0a0a to production (promotion p-1)",
    ]);
    expect(asked.slice(-3)).toEqual([
      "POST /v1/promotions -",
      'GET /v1/promotions/p-1?wait=30s "3"',
      'GET /v1/promotions/p-1?wait=30s "3"',
    ]);
  });

  it("a 502 whose code the error table marks final (upstream_denied) is not retried: exit 2", async () => {
    answers = [
      { status: 201, body: resource("running", 3) },
      {
        status: 502,
        body: { code: "upstream_denied", detail: "the registry denied access", requestId: "r3" },
      },
      { status: 200, body: resource("promoted", 5) },
    ];
    const run = await ferry(promote("--digest", DIGEST, "--server", flakyUrl, "--wait=1m"), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(2);
    expect(run.err).toBe("ferry: HTTP 502 upstream_denied: the registry denied access (request id r3)\n");
    answers = [];
  });

  it("a 4xx while following is not retried: exit 2", async () => {
    answers = [
      { status: 201, body: resource("running", 3) },
      { status: 401, body: { code: "unauthenticated", reason: "token_expired", requestId: "r2" } },
    ];
    const run = await ferry(promote("--digest", DIGEST, "--server", flakyUrl, "--wait=1m"), {
      FERRY_TOKEN: TOKEN,
    });
    expect(run.code).toBe(2);
    expect(run.err).toBe("ferry: HTTP 401 unauthenticated (reason token_expired, request id r2)\n");
  });
});
