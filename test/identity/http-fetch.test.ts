import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FetchError, httpJsonFetcher } from "../../src/identity/http-fetch.ts";
import { LOOPBACK } from "../support/net.ts";

// A JSON document of exactly 100 bytes, served whole (with its length) or chunked (without).
const DOC = JSON.stringify({ keys: "x".repeat(100 - '{"keys":""}'.length) });
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/hang") return; // never answers: the fetch's deadline ends it
    if (req.url === "/declared") {
      res.setHeader("content-length", DOC.length);
      res.end(DOC);
      return;
    }
    // Chunked: the size is known only as the bytes arrive.
    res.write(DOC.slice(0, 50));
    res.end(DOC.slice(50));
  });
  server.listen(0, LOOPBACK);
  await once(server, "listening");
  base = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server?.closeAllConnections();
  server?.close();
});

const get = (path: string, maxBytes: number) =>
  httpJsonFetcher.getJson(`${base}${path}`, { allowInsecureHttp: true, maxBytes, timeoutMs: 5_000 });

describe("httpJsonFetcher's body cap", () => {
  it("reads a body of exactly the cap, declared or chunked", async () => {
    expect(await get("/declared", 100)).toEqual(JSON.parse(DOC));
    expect(await get("/chunked", 100)).toEqual(JSON.parse(DOC));
  });

  it("refuses a declared length over the cap, and a chunked body once it passes the cap", async () => {
    await expect(get("/declared", 99)).rejects.toThrow(
      new FetchError(`${base}/declared: answer of 100 bytes is larger than the 99-byte cap`, {
        failure: "too_large",
      }),
    );
    const err = await get("/chunked", 99).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as Error).message).toBe(`${base}/chunked: answer is larger than the 99-byte cap`);
  });
});

describe("httpJsonFetcher's failures", () => {
  it("names a timeout as one, with no hint", async () => {
    const err = await httpJsonFetcher
      .getJson(`${base}/hang`, { allowInsecureHttp: true, maxBytes: 100, timeoutMs: 50 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect(err).toMatchObject({ message: `${base}/hang: timed out`, failure: "timeout", hint: undefined });
  });
});
