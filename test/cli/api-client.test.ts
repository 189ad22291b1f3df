import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { ApiClient, ApiProblem, checkServerUrl, Unreachable } from "../../src/cli/api-client.ts";
import { CliError } from "../../src/cli/io.ts";
import { getFreePort, LOOPBACK } from "../support/net.ts";

const TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let server: Server;
let base: string;
let seen: Seen[] = [];
let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  base = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  handler = (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
});

const OK = z.object({ ok: z.boolean() });
const client = (timeoutMs?: number) =>
  new ApiClient({ server: `${base}/`, token: TOKEN, ...(timeoutMs ? { timeoutMs } : {}) });
const failure = async (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e as Error,
  );

describe("ApiClient", () => {
  it("sends the token only as Authorization: Bearer, JSON in, JSON out, the query encoded", async () => {
    handler = (_req, res) =>
      res.writeHead(201, { "content-type": "application/json" }).end('{"ok":true,"x":1}');
    const res = await client().post("/v1/promotions", OK, {
      body: { app: "web" },
      query: { state: "waiting", app: undefined, limit: 5 },
      headers: { "idempotency-key": "k1", authorization: "Bearer not-this" },
    });
    expect(res.status).toBe(201);
    expect(res.data).toEqual({ ok: true });
    expect(seen).toHaveLength(1);
    const [req] = seen;
    expect(req!.method).toBe("POST");
    expect(req!.url).toBe("/v1/promotions?state=waiting&limit=5");
    expect(req!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req!.headers["idempotency-key"]).toBe("k1");
    expect(req!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req!.body)).toEqual({ app: "web" });
    expect(req!.url).not.toContain(TOKEN);
  });

  it("a problem+json answer becomes one line: status, code, detail, reason and request id", async () => {
    handler = (_req, res) =>
      res.writeHead(403, { "content-type": "application/problem+json", "x-request-id": "hdr-id" }).end(
        JSON.stringify({
          type: "https://ferry.dev/problems/forbidden",
          title: "The caller is not allowed to do this",
          status: 403,
          code: "forbidden",
          detail: "not a promoter of production\nsecond line",
          reason: "not_a_promoter",
          requestId: "req-123",
        }),
      );
    const err = await failure(client().get("/v1/promotions/p1", OK));
    expect(err).toBeInstanceOf(ApiProblem);
    const problem = err as ApiProblem;
    expect(problem).toMatchObject({
      status: 403,
      code: "forbidden",
      reason: "not_a_promoter",
      requestId: "req-123",
    });
    expect(problem.message).toBe(
      "HTTP 403 forbidden: not a promoter of production second line (reason not_a_promoter, request id req-123)",
    );
  });

  it("`request_id` in the body, or else the x-request-id header, names the request", async () => {
    handler = (_req, res) =>
      res
        .writeHead(409, { "content-type": "application/problem+json" })
        .end('{"code":"conflict","request_id":"snake"}');
    expect((await failure(client().get("/x", OK))).message).toBe("HTTP 409 conflict (request id snake)");
    handler = (_req, res) =>
      res.writeHead(502, { "x-request-id": "from-header" }).end("<html>Bad gateway</html>");
    const err = (await failure(client().get("/x", OK))) as ApiProblem;
    expect(err).toBeInstanceOf(ApiProblem);
    expect(err.message).toBe("HTTP 502 (request id from-header)");
  });

  it("refuses to follow a redirect, so the token never goes elsewhere", async () => {
    handler = (_req, res) => res.writeHead(307, { location: `${base}/elsewhere` }).end();
    const err = await failure(client().get("/v1/apps", OK));
    expect(err).toBeInstanceOf(CliError);
    expect(err.message).toMatch(/redirect \(HTTP 307\); not followed/);
    expect(seen.map((s) => s.url)).toEqual(["/v1/apps"]);
  });

  it("an unreachable server or a timeout is Unreachable; a wrong shape or non-JSON a CliError", async () => {
    const dead = new ApiClient({ server: `http://${LOOPBACK}:${await getFreePort()}`, token: TOKEN });
    const refused = await failure(dead.get("/v1/apps", OK));
    expect(refused).toBeInstanceOf(Unreachable);
    expect(refused.message).toMatch(/cannot reach .*ECONNREFUSED/);

    handler = () => {}; // never answers
    const slow = await failure(client(200).get("/v1/apps", OK));
    expect(slow).toBeInstanceOf(Unreachable);
    expect(slow.message).toMatch(/timed out/);

    handler = (_req, res) => res.writeHead(200).end('{"ok":"yes"}');
    expect((await failure(client().get("/v1/apps", OK))).message).toMatch(/unexpected shape \(ok: /);
    handler = (_req, res) => res.writeHead(200).end("not json");
    expect((await failure(client().get("/v1/apps", OK))).message).toMatch(/not JSON/);
  });

  it("a read refused for an expired token is retried once with a renewed one; a write never is", async () => {
    handler = (req, res) => {
      if (req.headers.authorization === "Bearer renewed") {
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
        return;
      }
      res
        .writeHead(401, { "content-type": "application/problem+json" })
        .end('{"code":"unauthenticated","reason":"token_expired","requestId":"r"}');
    };
    let renewals = 0;
    const renewing = new ApiClient({
      server: base,
      token: TOKEN,
      renew: async () => {
        renewals++;
        return "renewed";
      },
    });
    const post = (await failure(renewing.post("/v1/promotions", OK, { body: {} }))) as ApiProblem;
    expect(post.reason).toBe("token_expired");
    expect(renewals).toBe(0);
    expect((await renewing.get("/v1/promotions/p1", OK)).data).toEqual({ ok: true });
    expect(renewals).toBe(1);
    expect(seen.map((s) => `${s.method} ${s.headers.authorization}`)).toEqual([
      `POST Bearer ${TOKEN}`,
      `GET Bearer ${TOKEN}`,
      "GET Bearer renewed",
    ]);
    // Without a way to renew, the refusal is the answer.
    expect(((await failure(client().get("/v1/apps", OK))) as ApiProblem).reason).toBe("token_expired");
  });

  it("an answer larger than the cap is refused", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`{"ok":true,"pad":"${"x".repeat(9 * 1024 * 1024)}"}`);
    };
    expect((await failure(client().get("/v1/apps", OK))).message).toMatch(/larger than/);
  });
});

describe("checkServerUrl", () => {
  it("accepts https, and plain http only to loopback; trims a trailing slash", () => {
    expect(checkServerUrl("https://ferry.example.com/")).toBe("https://ferry.example.com");
    expect(checkServerUrl("https://ferry.example.com/base/")).toBe("https://ferry.example.com/base");
    expect(checkServerUrl("http://127.0.0.1:8080")).toBe("http://127.0.0.1:8080");
    expect(checkServerUrl("http://localhost:8080")).toBe("http://localhost:8080");
    expect(checkServerUrl("http://[::1]:8080")).toBe("http://[::1]:8080");
  });

  it.each([
    [undefined, /no server: pass --server URL or set FERRY_SERVER/],
    ["", /no server/],
    ["ferry.example.com", /is not a URL/],
    ["http://ferry.example.com", /must be https/],
    ["ftp://ferry.example.com", /must be an https URL/],
    ["https://u:p@ferry.example.com", /credentials/],
    ["https://ferry.example.com/?x=1", /query/],
  ])("refuses %j", (url, message) => {
    expect(() => checkServerUrl(url)).toThrow(message);
  });
});
