import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CliError } from "../../src/cli/io.ts";
import { findToken, type TokenSourceOptions } from "../../src/cli/token-source.ts";
import { getFreePort, LOOPBACK } from "../support/net.ts";

const REQUEST_TOKEN = "gha-request-token-0123456789";
const ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvd2ViIn0.c2lnbmF0dXJl";

/**
 * A real loopback stand-in for GitHub Actions' ID token endpoint: it answers `{value}` only for the
 * runner's request token as a lower-case `bearer` and echoes the audience into the token, so the
 * test sees which audience was asked for.
 */
let server: Server;
let endpoint: string;
let seen: IncomingMessage[] = [];
let answer: ((req: IncomingMessage) => { status: number; body: string }) | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    const custom = answer?.(req);
    if (custom) {
      res.writeHead(custom.status, { "content-type": "application/json" }).end(custom.body);
      return;
    }
    const url = new URL(req.url ?? "/", "http://x");
    if (
      req.headers.authorization !== `bearer ${REQUEST_TOKEN}` ||
      url.searchParams.get("api-version") !== "2.0"
    ) {
      res.writeHead(401).end('{"message":"bad credentials"}');
      return;
    }
    const aud = url.searchParams.get("audience") ?? "";
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ value: `${ID_TOKEN}.${Buffer.from(aud).toString("base64url")}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  // GitHub's URL carries a query already (`?api-version=2.0`); the audience is appended to it.
  endpoint = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}/_apis/token?api-version=2.0`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  answer = undefined;
});

const base = (env: Record<string, string>, over: Partial<TokenSourceOptions> = {}): TokenSourceOptions => ({
  server: "https://ferry.example.com/",
  env,
  ...over,
});
const gha = () => ({ ACTIONS_ID_TOKEN_REQUEST_URL: endpoint, ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN });
const audienceOf = (token: string) => Buffer.from(token.split(".").at(-1)!, "base64url").toString();

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  return (err as CliError).message;
}

describe("findToken: GitHub Actions", () => {
  it("asks the runner's endpoint with its bearer and the given audience, and returns `value`", async () => {
    const found = await findToken(base(gha(), { audience: "https://ferry.example.com" }));
    expect(found.source).toBe("GitHub Actions");
    expect(audienceOf(found.token)).toBe("https://ferry.example.com");
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe("GET");
    const url = new URL(seen[0]!.url!, "http://x");
    expect(url.searchParams.get("api-version")).toBe("2.0");
    expect(url.searchParams.getAll("audience")).toEqual(["https://ferry.example.com"]);
  });

  it("defaults the audience to $FERRY_AUDIENCE, else the server's origin", async () => {
    const fromEnv = await findToken(base({ ...gha(), FERRY_AUDIENCE: "ferry-prod" }));
    expect(audienceOf(fromEnv.token)).toBe("ferry-prod");
    const fromServer = await findToken(base(gha(), { server: "https://ferry.example.com:8443/api/" }));
    expect(audienceOf(fromServer.token)).toBe("https://ferry.example.com:8443");
  });

  it("a refused request names the permission to grant and never prints the request token", async () => {
    const message = await refusal(
      findToken(base({ ...gha(), ACTIONS_ID_TOKEN_REQUEST_TOKEN: "wrong-request-token" })),
    );
    expect(message).toMatch(/HTTP 401/);
    expect(message).toMatch(/id-token: write/);
    expect(message).not.toContain("wrong-request-token");
  });

  it("an answer without a usable value is refused, not sent", async () => {
    answer = () => ({ status: 200, body: '{"count":1}' });
    expect(await refusal(findToken(base(gha())))).toMatch(/without a `value`/);
    answer = () => ({ status: 200, body: '{"value":"two\\nlines"}' });
    expect(await refusal(findToken(base(gha())))).toMatch(/does not hold a bearer token/);
    answer = () => ({ status: 200, body: "<html>" });
    expect(await refusal(findToken(base(gha())))).toMatch(/not JSON/);
  });

  it("an unreachable endpoint is a CliError with the reason", async () => {
    const env = {
      ...gha(),
      ACTIONS_ID_TOKEN_REQUEST_URL: `http://${LOOPBACK}:${await getFreePort()}/token?x=1`,
    };
    expect(await refusal(findToken(base(env)))).toMatch(
      /cannot get a token from GitHub Actions.*ECONNREFUSED/,
    );
  });
});

describe("findToken: other sources and precedence", () => {
  it("GitLab's FERRY_ID_TOKEN is used as is, without asking GitHub", async () => {
    const found = await findToken(base({ ...gha(), FERRY_ID_TOKEN: ID_TOKEN }));
    expect(found).toEqual({ token: ID_TOKEN, source: "FERRY_ID_TOKEN" });
    expect(seen).toHaveLength(0);
  });

  it("--token-file beats FERRY_TOKEN, which beats FERRY_ID_TOKEN; the file is trimmed", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ferry-token-"));
    const file = path.join(dir, "token");
    writeFileSync(file, `${ID_TOKEN}.file\n`);
    const env = { ...gha(), FERRY_TOKEN: `${ID_TOKEN}.env`, FERRY_ID_TOKEN: `${ID_TOKEN}.gitlab` };
    expect(await findToken(base(env, { tokenFile: file }))).toEqual({
      token: `${ID_TOKEN}.file`,
      source: "--token-file",
    });
    expect(await findToken(base(env))).toEqual({ token: `${ID_TOKEN}.env`, source: "FERRY_TOKEN" });
    expect(seen).toHaveLength(0);
  });

  it("a missing or empty token file, or one with more than a token, is refused without echoing it", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ferry-token-"));
    expect(await refusal(findToken(base({}, { tokenFile: path.join(dir, "nope") })))).toMatch(/ENOENT/);
    writeFileSync(path.join(dir, "empty"), "\n");
    expect(await refusal(findToken(base({}, { tokenFile: path.join(dir, "empty") })))).toMatch(/is empty/);
    writeFileSync(path.join(dir, "two"), "secret-part-one\nX-Injected: yes\n");
    const message = await refusal(findToken(base({}, { tokenFile: path.join(dir, "two") })));
    expect(message).toMatch(/does not hold a bearer token/);
    expect(message).not.toContain("secret-part-one");
  });

  it("no source at all: one error naming every way", async () => {
    const message = await refusal(findToken(base({ FERRY_TOKEN: "  " })));
    expect(message).toMatch(/^no token found/);
    for (const way of [
      "--token-file",
      "FERRY_TOKEN",
      "FERRY_ID_TOKEN",
      "id-token: write",
      "ACTIONS_ID_TOKEN_REQUEST_URL",
    ]) {
      expect(message).toContain(way);
    }
  });
});
