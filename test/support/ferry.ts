import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { expect } from "vitest";
import { stringify } from "yaml";
import { createLogger } from "../../src/common/logger.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { type RunningFerry, type StartOptions, startFerry } from "../../src/server.ts";

/** A Ferry started in-process for a test, with its log lines captured. */
export interface TestFerry extends RunningFerry {
  dir: string;
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[];
  /** The raw log text, for "never logs X" assertions. */
  logText(): string;
}

/**
 * Starts Ferry on a free loopback port with a fresh SQLite store and signing key in a temp dir.
 * `overrides` are merged over that minimal config (as YAML values, before validation); `options` go
 * to `startFerry` (e.g. Ferry's AWS credentials for tests against the STS fake).
 */
export async function startTestFerry(
  overrides: Record<string, unknown> = {},
  options: Omit<StartOptions, "logger"> = {},
): Promise<TestFerry> {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-test-"));
  const config = {
    dev: true,
    server: { listen: "127.0.0.1:0" },
    store: { sqlite: "./ferry.db" },
    keys: { signing: "./signing.pem" },
    log: { level: "info" },
    ...overrides,
  };
  const file = path.join(dir, "ferry.yaml");
  writeFileSync(file, stringify(config));
  const loaded = parseConfigText(stringify(config), file, {});
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const logger = createLogger(loaded.config.log.level, sink);
  const ferry = await startFerry(loaded, { ...options, logger });
  const logText = () => chunks.join("");
  return {
    ...ferry,
    dir,
    get logs() {
      return logText()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    logText,
  };
}

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token";

/**
 * `POST /v1/token`: an RFC 8693 exchange of `subjectToken` (an OIDC ID token) for the credential
 * named `audience`, as a pipeline sends it. `headers` are added to the form's content type.
 */
export function exchangeToken(
  ferry: { url: string },
  subjectToken: string,
  audience: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${ferry.url}/v1/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: tokenExchangeForm(subjectToken, audience),
  });
}

/** The urlencoded body of an RFC 8693 exchange of the ID token `subjectToken` for the credential `audience`. */
export function tokenExchangeForm(subjectToken: string, audience: string): string {
  return new URLSearchParams({
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: ID_TOKEN,
    audience,
  }).toString();
}

/**
 * A Ferry-minted token for `credential`, from a real {@link exchangeToken} of `subjectToken`: the
 * exchange must answer 200 (the answer is the assertion's message), then its `access_token` is returned.
 */
export async function mintedToken(
  ferry: { url: string },
  subjectToken: string,
  credential: string,
): Promise<string> {
  const res = await exchangeToken(ferry, subjectToken, credential);
  const body = (await res.json()) as Record<string, unknown>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.access_token as string;
}

/**
 * The `ferry-staging` credential of the HTTP tests: a ferry-jwt for the `staging` environment whose
 * audience is `audience` (Ferry's public URL, so Ferry accepts what it mints), granted to the
 * pipelines of repository 74 (acme/web, as `githubClaims` has it) on the issuer named `issuer`.
 */
export function stagingFerryJwtCredential(issuer: string, audience: string): Record<string, unknown> {
  return {
    name: "ferry-staging",
    environment: "staging",
    type: "ferry-jwt",
    audience,
    allow: [{ issuer, claims: { repository_id: "74" } }],
  };
}

/** What {@link callApi} got back: the status, the JSON body and the headers. */
export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

/**
 * A request to Ferry's API as a client sends it: `token` as the Bearer token and `body`, when given,
 * as JSON; `headers` are added last. The answer must be JSON (every API answer is, errors included).
 */
export async function callApi(
  ferry: { url: string },
  token: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  const res = await fetch(`${ferry.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}
