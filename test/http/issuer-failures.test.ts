import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import {
  exchangeToken,
  stagingFerryJwtCredential,
  startTestFerry,
  type TestFerry,
} from "../support/ferry.ts";
import { getFreePort, LOOPBACK } from "../support/net.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { selfSignedCertificate } from "../support/tls.ts";

// An issuer Ferry cannot reach must be diagnosable from the log alone: one warn line naming the
// cause (the certificate problem with the private-CA hint, connection refused, the HTTP status),
// and no stack trace anywhere, since an unreachable issuer is an expected failure.

const PUBLIC_URL = "https://ferry.test";
// A V8 stack frame ("    at fn (file:1:2)") in any string of a log line.
const STACK = /\n\s+at /;

let dir: string;
let privateCa: OidcIssuer;
let down: OidcIssuer;
let signer: OidcIssuer;
let closedUrl: string;
let ferry: TestFerry;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ferry-issuer-failures-"));
  const tls = await selfSignedCertificate(dir);
  [privateCa, down, signer] = await Promise.all([
    startOidcIssuer({ tls }),
    startOidcIssuer(),
    startOidcIssuer(),
  ]);
  down.setResponse("/.well-known/openid-configuration", { status: 503, body: "{}" });
  closedUrl = `http://${LOOPBACK}:${await getFreePort()}`;
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    issuers: [
      { name: "private-ca", url: privateCa.url, audience: PUBLIC_URL },
      loopbackIssuerConfig("closed", { url: closedUrl }, PUBLIC_URL),
      loopbackIssuerConfig("down", down, PUBLIC_URL),
    ],
    environments: [{ name: "staging", require: {} }],
    credentials: [stagingFerryJwtCredential("private-ca", PUBLIC_URL)],
  });
});
afterAll(async () => {
  await ferry?.close();
  await Promise.all([privateCa?.stop(), down?.stop(), signer?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

// Keys are fetched only once the token names the issuer; the signature is never reached.
const tokenFrom = (iss: string) => signer.sign(githubClaims({ iss, aud: PUBLIC_URL }));

async function exchange(iss: string): Promise<Response> {
  return exchangeToken(ferry, await tokenFrom(iss), "ferry-staging");
}

function warnFor(issuer: string): Record<string, unknown> {
  const lines = ferry.logs.filter((l) => l.level === "warn" && l.issuer === issuer);
  expect(lines, JSON.stringify(ferry.logs)).toHaveLength(1);
  return lines[0]!;
}

describe("an issuer Ferry cannot reach", () => {
  it("with a certificate from an unknown CA: a warn line names the certificate problem and NODE_EXTRA_CA_CERTS", async () => {
    const res = await exchange(privateCa.url);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      error: "temporarily_unavailable",
      reason: "issuer_unavailable",
    });
    const line = warnFor("private-ca");
    expect(line).toMatchObject({
      msg: "issuer's signing keys cannot be fetched",
      reason: "issuer_unavailable",
      code: "DEPTH_ZERO_SELF_SIGNED_CERT",
    });
    expect(line.problem).toBe(
      `${privateCa.url}/.well-known/openid-configuration: TLS failed: its certificate is self-signed and not trusted (DEPTH_ZERO_SELF_SIGNED_CERT)`,
    );
    expect(line.hint).toMatch(/NODE_EXTRA_CA_CERTS=/);
  });

  it("on a closed port: the warn line says connection refused", async () => {
    const res = await exchange(closedUrl);
    expect(res.status).toBe(503);
    const line = warnFor("closed");
    expect(line).toMatchObject({ code: "ECONNREFUSED", reason: "issuer_unavailable" });
    expect(line.problem).toBe(
      `${closedUrl}/.well-known/openid-configuration: connection refused (ECONNREFUSED)`,
    );
    expect(line.hint).toBeUndefined();
  });

  it("answering 503: the warn line has the status, on /v1/token and on an API route", async () => {
    const res = await exchange(down.url);
    expect(res.status).toBe(503);
    const line = warnFor("down");
    expect(line).toMatchObject({
      status: 503,
      problem: `${down.url}/.well-known/openid-configuration: HTTP 503`,
    });
    // Within the cooldown the same failure answers an API call, without another fetch or warn line.
    const api = await fetch(`${ferry.url}/v1/apps`, {
      headers: { authorization: `Bearer ${await tokenFrom(down.url)}` },
    });
    expect(api.status).toBe(502);
    expect(await api.json()).toMatchObject({ code: "upstream_failed", reason: "issuer_unavailable" });
    warnFor("down");
    const failed = ferry.logs.find((l) => l.msg === "request failed");
    expect(failed).toMatchObject({ level: "warn", detail: { issuer: "down", problem: line.problem } });
  });

  it("leaves no stack trace on any line of the run", () => {
    const logs = ferry.logs;
    expect(logs.filter((l) => l.msg === "request errored").length).toBeGreaterThanOrEqual(4);
    for (const line of logs)
      expect(JSON.stringify(line), JSON.stringify(line)).not.toMatch(/"stack"|\\n\s+at /);
    expect(ferry.logText()).not.toMatch(STACK);
  });
});
