import type { AddressInfo } from "node:net";
import express from "express";
import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  type ErrorCode,
  errorCodeOf,
  FerryError,
  isRetryable,
} from "../../src/common/errors.ts";
import { createLogger } from "../../src/common/logger.ts";
import { problemMiddleware } from "../../src/http/problem.ts";

describe("the error table's retryable flags", () => {
  it("say retryable only for codes where the same request may succeed later", () => {
    const retryable = Object.entries(ERROR_CODES)
      .filter(([, row]) => row.retryable)
      .map(([code]) => code)
      .sort();
    expect(retryable).toEqual([
      "internal",
      "rate_limited",
      "unavailable",
      "upstream_failed",
      "upstream_timeout",
    ]);
  });

  it("make an upstream's refusal, a malformed answer and an oversized object final", () => {
    for (const code of ["upstream_denied", "upstream_invalid", "payload_too_large"] as const) {
      expect(isRetryable(new FerryError(code, "x")), code).toBe(false);
    }
    expect(isRetryable(new FerryError("upstream_failed", "a 503 after retries"))).toBe(true);
  });
});

describe("isRetryable and errorCodeOf", () => {
  it("judge a FerryError by its code's row", () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const err = new FerryError(code, "x");
      expect(errorCodeOf(err)).toBe(code);
      expect(isRetryable(err), code).toBe(ERROR_CODES[code].retryable);
    }
  });

  it("judge an error that is not a FerryError by what it would become", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    // fetch wraps the socket's error: the code sits on the cause.
    const wrapped = new TypeError("fetch failed", { cause: { code: "UND_ERR_SOCKET" } });
    const timeout = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    expect(errorCodeOf(refused)).toBe("upstream_failed");
    expect(errorCodeOf(wrapped)).toBe("upstream_failed");
    expect(errorCodeOf(timeout)).toBe("upstream_timeout");
    expect(errorCodeOf(new RangeError("a bug"))).toBe("internal");
    expect(errorCodeOf("not even an Error")).toBe("internal");
    for (const err of [refused, wrapped, timeout, new RangeError("a bug")])
      expect(isRetryable(err)).toBe(true);
    // A message that merely mentions a connection failure is not one: codes decide, never text.
    expect(errorCodeOf(new Error("ECONNREFUSED"))).toBe("internal");
  });
});

describe("a FerryError's detail", () => {
  it("is kept on the error, apart from the caller-safe extra fields", () => {
    const err = new FerryError("upstream_denied", "denied", {
      extra: { reason: "r" },
      detail: { upstreamStatus: 403 },
    });
    expect(err.detail).toEqual({ upstreamStatus: 403 });
    expect(err.extra).toEqual({ reason: "r" });
    expect(new FerryError("not_found", "x").detail).toBeUndefined();
  });

  it("reaches the log line of the error and never the problem document", async () => {
    const lines: string[] = [];
    const logger = createLogger("info", { write: (line: string) => lines.push(line) });
    const app = express();
    app.get("/refused", () => {
      throw new FerryError("forbidden", "no", { detail: { marker: "refused-detail-7f3a" } });
    });
    app.get("/failed", () => {
      throw new FerryError("upstream_denied", "the registry denied access", {
        detail: { marker: "failed-detail-91c2", upstreamStatus: 403 },
      });
    });
    app.use(problemMiddleware(logger));
    const server = await new Promise<ReturnType<typeof app.listen>>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const [path, marker, status] of [
        ["/refused", "refused-detail-7f3a", 403],
        ["/failed", "failed-detail-91c2", 502],
      ] as const) {
        const res = await fetch(`${base}${path}`);
        expect(res.status).toBe(status);
        const body = await res.text();
        expect(body).not.toContain(marker);
        expect(JSON.parse(body)).not.toHaveProperty("detail.marker");
        const logged = lines
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.code !== undefined && JSON.stringify(l).includes(marker));
        expect(logged, path).toBeDefined();
        expect((logged!.detail as Record<string, unknown>).marker).toBe(marker);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
