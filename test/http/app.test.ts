import { readFileSync } from "node:fs";
import type http from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FerryError } from "../../src/common/errors.ts";
import { createLogger } from "../../src/common/logger.ts";
import { createApp } from "../../src/http/app.ts";
import { createHttpMetrics } from "../../src/http/metrics.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";

const openapi = readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8");
let ferry: TestFerry;

beforeAll(async () => {
  ferry = await startTestFerry({ server: { listen: "127.0.0.1:0", bodyLimit: 2048 } });
});

afterAll(async () => {
  await ferry?.close();
});

async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, requestId: res.headers.get("x-request-id") });
  expect(typeof body.detail).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.ts:\d+/);
  return body;
}

describe("operational endpoints", () => {
  it("answers /healthz and /readyz", async () => {
    const health = await fetch(`${ferry.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${ferry.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("serves the repository's openapi.yaml as is", async () => {
    const res = await fetch(`${ferry.url}/openapi.yaml`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/yaml/);
    expect(await res.text()).toBe(openapi);
  });

  it("exposes HTTP metrics by route template and process metrics", async () => {
    await fetch(`${ferry.url}/healthz`);
    await fetch(`${ferry.url}/no/such/path/${Math.random()}`);
    const res = await fetch(`${ferry.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(
      /ferry_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} [1-9]/,
    );
    expect(text).toMatch(/route="unmatched",status_code="404"/);
    expect(text).not.toMatch(/no\/such\/path/);
    expect(text).toMatch(/ferry_process_cpu_seconds_total/);
  });

  it("sets security headers and a request id, keeping a safe caller id and replacing an unsafe one", async () => {
    const res = await fetch(`${ferry.url}/healthz`, { headers: { "x-request-id": "trace-1234.abc" } });
    expect(res.headers.get("x-request-id")).toBe("trace-1234.abc");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
    expect(res.headers.get("x-powered-by")).toBeNull();
    expect(res.headers.get("cache-control")).toBe("no-store");
    const odd = await fetch(`${ferry.url}/healthz`, { headers: { "x-request-id": "<script>" } });
    expect(odd.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("bad input", () => {
  // Outside /v1: under it, authentication comes first (test/http/verification-authz.test.ts).
  it("malformed JSON is a 400 problem naming the problem", async () => {
    const res = await fetch(`${ferry.url}/anything`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"image": "x",}',
    });
    const body = await expectProblem(res, 400, "invalid_json");
    expect(body.detail).toMatch(/not valid JSON/);
  });

  it("an oversized body is a 413 problem", async () => {
    const res = await fetch(`${ferry.url}/anything`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pad: "x".repeat(4096) }),
    });
    await expectProblem(res, 413, "payload_too_large");
  });

  it("an unknown route is a 404 problem", async () => {
    const body = await expectProblem(await fetch(`${ferry.url}/v2/nothing`), 404, "not_found");
    expect(body.instance).toBe("/v2/nothing");
  });
});

describe("error middleware", () => {
  const logs: string[] = [];
  const logger = createLogger("info", { write: (line: string) => logs.push(line) });
  const router = express.Router();
  router.get("/boom", () => {
    throw new Error("secret internal detail at /src/x.ts:12");
  });
  router.get("/refused", () => {
    throw new FerryError("forbidden", "pipeline web may not promote api", { extra: { app: "api" } });
  });
  const app = createApp({
    logger,
    metrics: createHttpMetrics(),
    openapi,
    bodyLimit: 1024,
    trustProxy: false,
    readiness: async () => {
      throw new Error("db down");
    },
    isShuttingDown: () => false,
    routers: [router],
  });
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = await new Promise((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    const address = server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("turns an unexpected error into a 500 with no detail or stack, and logs the detail", async () => {
    const body = await expectProblem(await fetch(`${base}/boom`), 500, "internal");
    expect(JSON.stringify(body)).not.toContain("secret internal detail");
    expect(logs.join("")).toContain("secret internal detail");
  });

  it("passes a FerryError's code, message and extra fields through", async () => {
    const body = await expectProblem(await fetch(`${base}/refused`), 403, "forbidden");
    expect(body).toMatchObject({
      detail: "pipeline web may not promote api",
      app: "api",
      title: "The caller is not allowed to do this",
    });
  });

  it("/readyz is 503 when the store is unreachable", async () => {
    const body = await expectProblem(await fetch(`${base}/readyz`), 503, "unavailable");
    expect(body.detail).toMatch(/store/);
  });

  it("logs an unexpected error's stack once, at error, and an expected 5xx at warn with its cause and no stack", async () => {
    logs.length = 0;
    await expectProblem(await fetch(`${base}/boom`), 500, "internal");
    await expectProblem(await fetch(`${base}/readyz`), 503, "unavailable");
    const lines = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const stacked = lines.filter((l) => JSON.stringify(l).includes('"stack"'));
    expect(stacked).toHaveLength(1);
    expect(stacked[0]).toMatchObject({ level: "error", msg: "request failed", code: "internal" });
    expect(lines.find((l) => l.msg === "request errored")).toMatchObject({ res: { statusCode: 500 } });
    expect(lines.find((l) => l.code === "unavailable")).toMatchObject({
      level: "warn",
      msg: "request failed",
      cause: "db down",
    });
  });
});
