import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

// Bodies a client got wrong are 4xx with a reason and an info-level log line, never a 500: garbage
// under a Content-Encoding, an encoding Ferry does not decode, JSON nested deeper than allowed.

const PUBLIC_URL = "https://ferry.test";
const REPO = "127.0.0.1:1/staging/web";
const IMAGE = `${REPO}@sha256:${"a".repeat(64)}`;
const GARBAGE = Buffer.from("this is not a compressed stream at all, just bytes");

let github: OidcIssuer;
let ferry: TestFerry;

const token = () => github.sign(githubClaims({ iss: github.url, aud: PUBLIC_URL }));

async function send(
  route: string,
  body: Buffer | string,
  headers: Record<string, string>,
  bearer?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${ferry.url}${route}`, {
    method: "POST",
    headers: { ...headers, ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Pino's error level is 50: no refusal of a client's body may log at it (or above). */
function errorLines(): Record<string, unknown>[] {
  return ferry.logs.filter((l) => typeof l.level === "number" && l.level >= 50);
}

beforeAll(async () => {
  github = await startOidcIssuer();
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL, jsonDepth: 64 },
    issuers: [loopbackIssuerConfig("github", github, PUBLIC_URL, { platform: "github" })],
    environments: [{ name: "staging", require: {} }],
    apps: [
      {
        name: "web",
        images: { staging: REPO },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
  });
});

afterAll(async () => {
  await ferry?.close();
  await github?.stop();
});

describe("corrupt compressed bodies", () => {
  for (const encoding of ["gzip", "deflate"]) {
    it(`${encoding} garbage on /v1/token is invalid_request (400)`, async () => {
      for (const type of ["application/x-www-form-urlencoded", "application/json"]) {
        const res = await send("/v1/token", GARBAGE, { "content-type": type, "content-encoding": encoding });
        expect(res.status, JSON.stringify(res.body)).toBe(400);
        expect(res.body).toMatchObject({ error: "invalid_request", reason: "request_invalid" });
      }
      expect(errorLines()).toEqual([]);
    });

    for (const route of ["/v1/verifications", "/v1/signatures"]) {
      it(`${encoding} garbage on ${route}: 401 without a token, bad_request (400) with one`, async () => {
        const headers = { "content-type": "application/json", "content-encoding": encoding };
        const anonymous = await send(route, GARBAGE, headers);
        expect(anonymous.status).toBe(401);
        expect(anonymous.body).toMatchObject({ code: "unauthenticated" });
        const res = await send(route, GARBAGE, headers, await token());
        expect(res.status, JSON.stringify(res.body)).toBe(400);
        expect(res.body).toMatchObject({ code: "bad_request" });
        expect(errorLines()).toEqual([]);
      });
    }
  }

  it("a correctly compressed body is still accepted", async () => {
    const body = gzipSync(JSON.stringify({ image: `${REPO}:v1`, environment: "staging" }));
    const res = await send(
      "/v1/verifications",
      body,
      { "content-type": "application/json", "content-encoding": "gzip" },
      await token(),
    );
    // It was read: the answer is about its content (a tag where a digest is needed).
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "tag_reference" });
  });

  it("an encoding Ferry does not decode is 415", async () => {
    const headers = { "content-type": "application/json", "content-encoding": "compress" };
    const api = await send("/v1/signatures", GARBAGE, headers, await token());
    expect(api.status).toBe(415);
    expect(api.body).toMatchObject({ code: "unsupported_media_type" });
    const oauth = await send("/v1/token", GARBAGE, headers);
    expect(oauth.status).toBe(415);
    expect(oauth.body).toMatchObject({ error: "invalid_request" });
    expect(errorLines()).toEqual([]);
  });
});

describe("deeply nested JSON", () => {
  const LEVELS = 100_000;
  const deep = (inner: string) => `${"[".repeat(LEVELS)}${inner}${"]".repeat(LEVELS)}`;

  it("a predicate nested 100,000 levels deep is validation_failed (400), not a stack overflow", async () => {
    const body = `{"image":"${IMAGE}","attestations":[{"predicateType":"https://spdx.dev/Document","predicate":${deep("1")}}]}`;
    const res = await send("/v1/signatures", body, { "content-type": "application/json" }, await token());
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(400);
    expect(res.body).toMatchObject({ code: "validation_failed" });
    expect(String(res.body.detail)).toMatch(/64/);
    expect(errorLines()).toEqual([]);
  });

  it("the same body on /v1/token is invalid_request", async () => {
    const res = await send("/v1/token", `{"scope":${deep("0")}}`, { "content-type": "application/json" });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: "invalid_request" });
  });

  it("brackets inside strings do not count, and nesting up to the limit passes the parser", async () => {
    const nested = `${"[".repeat(60)}"[[[[[[[[[[[[[[[[[[[[\\"]]"${"]".repeat(60)}`;
    const body = `{"image":"${IMAGE}","environment":"staging","x":${nested}}`;
    const res = await send("/v1/verifications", body, { "content-type": "application/json" }, await token());
    // Read and parsed: the refusal is zod's (an unknown key), not the depth limit.
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "validation_failed" });
    expect(res.body.detail).toMatch(/^expected a JSON body/);
  });
});
