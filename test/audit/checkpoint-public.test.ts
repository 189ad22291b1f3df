import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { verifyCheckpoint } from "../../src/audit/checkpoint.ts";
import type { SignedCheckpoint } from "../../src/audit/types.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";

// `GET /v1/audit/checkpoint` is public: it reveals only a size and a head, and witnesses that hold
// no token must be able to fetch it. Nothing else under /v1 loses its guard.

let ferry: TestFerry;

beforeAll(async () => {
  ferry = await startTestFerry({ server: { listen: "127.0.0.1:0", publicUrl: "https://ferry.test" } });
});

afterAll(async () => {
  await ferry?.close();
});

describe("the public checkpoint", () => {
  it("answers 404 without a token before the first checkpoint, then the signed checkpoint", async () => {
    const before = await fetch(`${ferry.url}/v1/audit/checkpoint`);
    expect(before.status).toBe(404);
    await ferry.audit.flush();
    const signed = await ferry.audit.createCheckpoint();
    expect(signed).toBeDefined();
    const res = await fetch(`${ferry.url}/v1/audit/checkpoint`);
    expect(res.status).toBe(200);
    const cp = (await res.json()) as SignedCheckpoint;
    expect(cp.checkpoint.size).toBe(signed!.checkpoint.size);
    expect(verifyCheckpoint(cp, ferry.signingKey.publicKey)).toMatchObject({ ok: true });
    // A token that does not verify changes nothing: the route does not look at it.
    const junk = await fetch(`${ferry.url}/v1/audit/checkpoint`, {
      headers: { authorization: "Bearer junk" },
    });
    expect(junk.status).toBe(200);
  });

  it("keeps the guard on everything else: the log itself, other methods, look-alike paths", async () => {
    for (const [method, url] of [
      ["GET", "/v1/audit"],
      ["GET", "/v1/audit?after=0"],
      ["POST", "/v1/audit/checkpoint"],
      ["GET", "/v1/audit/checkpoint/x"],
      ["GET", "/v1/audit/checkpointx"],
      ["GET", "/v1/promotions"],
    ] as const) {
      const res = await fetch(`${ferry.url}${url}`, { method });
      expect(res.status, `${method} ${url}`).toBe(401);
    }
  });

  it("is documented as public in openapi.yaml", () => {
    const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8"));
    const op = spec.paths["/v1/audit/checkpoint"].get;
    expect(op.security).toEqual([]);
    expect(op.responses["401"]).toBeUndefined();
  });
});
