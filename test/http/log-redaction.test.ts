import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import {
  stagingFerryJwtCredential,
  startTestFerry,
  type TestFerry,
  tokenExchangeForm,
} from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

// Never log a token: a run of requests carrying tokens everywhere a client might put one (the
// Authorization header, the query string, the body of /v1/token), accepted and refused, and then
// every log line of the run is searched for each token and for each token's signature segment.

const PUBLIC_URL = "https://ferry.test";

let github: OidcIssuer;
let stranger: OidcIssuer;
let ferry: TestFerry;
const used: string[] = [];

async function pipelineToken(over: Record<string, unknown> = {}, issuer = github): Promise<string> {
  const token = await issuer.sign(githubClaims({ iss: issuer.url, aud: PUBLIC_URL }, over));
  used.push(token);
  return token;
}

beforeAll(async () => {
  [github, stranger] = await Promise.all([startOidcIssuer(), startOidcIssuer()]);
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    log: { level: "trace" },
    issuers: [loopbackIssuerConfig("github", github, PUBLIC_URL, { platform: "github" })],
    environments: [{ name: "staging", require: {} }],
    credentials: [stagingFerryJwtCredential("github", PUBLIC_URL)],
  });
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([github?.stop(), stranger?.stop()]);
});

const exchangeBody = (subjectToken: string) => tokenExchangeForm(subjectToken, "ferry-staging");

describe("logs never carry a token", () => {
  it("in the header, the query string or the body; accepted or refused", async () => {
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const json = { "content-type": "application/json" };
    const statuses: number[] = [];
    const call = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${ferry.url}${path}`, init);
      statuses.push(res.status);
      return res;
    };

    // A granted exchange: the subject token in the body, the minted token in the answer.
    const granted = await call("/v1/token", {
      method: "POST",
      headers: form,
      body: exchangeBody(await pipelineToken()),
    });
    const mintedToken = ((await granted.json()) as { access_token: string }).access_token;
    used.push(mintedToken);
    // Refused exchanges: a replayed subject token, one from an unknown issuer, a JSON body that
    // does not parse (body-parser keeps the raw body on its error), the token in the query string.
    const once = await pipelineToken();
    await call("/v1/token", { method: "POST", headers: form, body: exchangeBody(once) });
    await call("/v1/token", { method: "POST", headers: form, body: exchangeBody(once) });
    await call("/v1/token", {
      method: "POST",
      headers: form,
      body: exchangeBody(await pipelineToken({}, stranger)),
    });
    await call("/v1/token", {
      method: "POST",
      headers: json,
      body: `{"subject_token":"${await pipelineToken()}",`,
    });
    await call(`/v1/token?subject_token=${await pipelineToken()}&audience=ferry-staging`, { method: "POST" });

    // The API: accepted (the minted token and an ID token), expired, unknown issuer, in the query.
    const bearer = (token: string) => ({ ...json, authorization: `Bearer ${token}` });
    const body = JSON.stringify({ image: `127.0.0.1:1/x@sha256:${"b".repeat(64)}`, environment: "staging" });
    await call("/v1/verifications", { method: "POST", headers: bearer(mintedToken), body });
    await call("/v1/verifications", { method: "POST", headers: bearer(await pipelineToken()), body });
    const expired = await pipelineToken({ exp: Math.floor(Date.now() / 1000) - 600 });
    await call("/v1/verifications", { method: "POST", headers: bearer(expired), body });
    await call("/v1/verifications", {
      method: "POST",
      headers: bearer(await pipelineToken({}, stranger)),
      body,
    });
    await call(`/v1/verifications?access_token=${await pipelineToken()}`, {
      method: "POST",
      headers: json,
      body,
    });
    await call(`/v1/signatures?token=${await pipelineToken()}&x=1`, {
      method: "POST",
      headers: json,
      body: "{",
    });
    await call(`/v1/nothing-here?id_token=${await pipelineToken()}`, {
      headers: bearer(await pipelineToken()),
    });
    await call(`/nothing-here?id_token=${await pipelineToken()}`);

    // The run did exercise both outcomes.
    expect(statuses).toContain(200);
    expect(statuses.filter((s) => s >= 400).length).toBeGreaterThan(5);
    const text = ferry.logText();
    expect(text).toContain("request completed");
    for (const token of used) {
      const signature = token.split(".")[2]!;
      expect(signature.length).toBeGreaterThan(20);
      expect(text.includes(token), `a token appears in the log`).toBe(false);
      expect(text.includes(signature), `a token's signature appears in the log`).toBe(false);
    }
  });
});
