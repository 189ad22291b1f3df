import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import {
  exchangeToken,
  stagingFerryJwtCredential,
  startTestFerry,
  type TestFerry,
} from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

// One field set names an identity on every log line (docs/architecture.md, Log fields): `issuer`
// is the issuer's config name, `sub` the token's subject, and `issuerUrl` only for an `iss` that no
// registered issuer has. A run with a granted, a refused and an unregistered exchange, an
// authentication refusal and a signing refusal, then every line that names an identity is checked.

const PUBLIC_URL = "https://ferry.test";
const IDENTITY_FIELDS = ["issuer", "issuerUrl", "sub", "subject", "iss"];

let github: OidcIssuer;
let stranger: OidcIssuer;
let ferry: TestFerry;

beforeAll(async () => {
  [github, stranger] = await Promise.all([startOidcIssuer(), startOidcIssuer()]);
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    log: { level: "trace" },
    issuers: [loopbackIssuerConfig("github", github, PUBLIC_URL, { platform: "github" })],
    // Never contacted: the signing refusal comes before any registry request.
    registries: [{ url: "http://127.0.0.1:9" }],
    environments: [{ name: "staging", require: {} }],
    apps: [
      {
        name: "web",
        images: { staging: "127.0.0.1:9/staging/web" },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    credentials: [stagingFerryJwtCredential("github", PUBLIC_URL)],
  });
});
afterAll(async () => {
  await ferry?.close();
  await Promise.all([github?.stop(), stranger?.stop()]);
});

const token = (over: Record<string, unknown> = {}, issuer = github) =>
  issuer.sign(githubClaims({ iss: issuer.url, aud: PUBLIC_URL }, over));

const exchange = (subjectToken: string) => exchangeToken(ferry, subjectToken, "ferry-staging");

/** The identity fields of a line: at its top level and in its `detail`. */
function identityFields(line: Record<string, unknown>): Record<string, unknown> {
  const detail = (line.detail ?? {}) as Record<string, unknown>;
  const found: Record<string, unknown> = {};
  for (const source of [line, detail])
    for (const field of IDENTITY_FIELDS) if (field in source) found[field] = source[field];
  return found;
}

describe("log fields of identities", () => {
  it("are issuer (the config name) and sub on every line, and issuerUrl only for an unregistered iss", async () => {
    expect((await exchange(await token())).status).toBe(200);
    expect((await exchange(await token({ repository_id: "99" }))).status).toBe(403);
    expect((await exchange(await token({}, stranger))).status).toBe(400);
    const wrongAudience = await token({ aud: "https://elsewhere.test" });
    const auth = await fetch(`${ferry.url}/v1/apps`, {
      headers: { authorization: `Bearer ${wrongAudience}` },
    });
    expect(auth.status).toBe(401);
    const sign = await fetch(`${ferry.url}/v1/signatures`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${await token({ repository_id: "99" })}`,
      },
      body: JSON.stringify({ image: `127.0.0.1:9/staging/web@sha256:${"a".repeat(64)}` }),
    });
    expect(sign.status, await sign.text()).toBe(403);

    const named = ferry.logs.filter((l) => Object.keys(identityFields(l)).length > 0);
    const messages = named.map((l) => String(l.msg));
    for (const msg of [
      "token exchange granted",
      "token exchange refused",
      "authentication refused",
      "signing refused: pipeline does not match the app's pipelines",
    ]) {
      expect(messages).toContain(msg);
      const about = named.filter((l) => l.msg === msg && !("issuerUrl" in identityFields(l)));
      for (const line of about)
        expect(Object.keys(identityFields(line)).sort(), msg).toEqual(["issuer", "sub"]);
    }
    const sub = githubClaims({ iss: github.url, aud: PUBLIC_URL }).sub;
    for (const line of named) {
      const fields = identityFields(line);
      if ("issuerUrl" in fields) {
        expect(fields, String(line.msg)).toEqual({ issuerUrl: stranger.url });
        continue;
      }
      // A line about an issuer rather than a token (a key it lacks) names the issuer only.
      expect(Object.keys(fields).sort(), JSON.stringify(line)).toEqual(
        "sub" in fields ? ["issuer", "sub"] : ["issuer"],
      );
      expect(fields.issuer, JSON.stringify(line)).toBe("github");
      if ("sub" in fields) expect(fields.sub).toBe(sub);
    }
    expect(named.filter((l) => "issuerUrl" in identityFields(l)).length).toBeGreaterThan(0);
  });
});
