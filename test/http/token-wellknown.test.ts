import path from "node:path";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";

const PUBLIC_URL = "https://ferry.test";
const AUD = "https://ferry.example.com";

let github: OidcIssuer;
let before: TestFerry;
let after: TestFerry | undefined;

function config(keys: Record<string, unknown> = { signing: "./signing.pem" }) {
  return {
    server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
    keys,
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    environments: [{ name: "staging" }],
    credentials: [
      {
        name: "deploy-staging",
        environment: "staging",
        type: "ferry-jwt",
        allow: [{ issuer: "github", claims: { repository_id: "74", runner_environment: "github-hosted" } }],
      },
    ],
  };
}

async function mint(ferry: TestFerry): Promise<string> {
  const res = await fetch(`${ferry.url}/v1/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: await github.sign(githubClaims({ iss: github.url, aud: AUD })),
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      audience: "deploy-staging",
    }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

beforeAll(async () => {
  github = await startOidcIssuer();
  before = await startTestFerry(config());
});
afterAll(async () => {
  await before?.close();
  await after?.close();
  await github?.stop();
});

describe("Ferry as an OIDC issuer", () => {
  it("serves a discovery document and a cacheable JWKS of public keys", async () => {
    const res = await fetch(`${before.url}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    expect(await res.json()).toMatchObject({
      issuer: PUBLIC_URL,
      jwks_uri: `${PUBLIC_URL}/.well-known/jwks.json`,
      token_endpoint: `${PUBLIC_URL}/v1/token`,
      id_token_signing_alg_values_supported: ["ES256"],
      grant_types_supported: ["urn:ietf:params:oauth:grant-type:token-exchange"],
    });
    const jwks = (await (await fetch(`${before.url}/.well-known/jwks.json`)).json()) as {
      keys: Record<string, unknown>[];
    };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({
      kty: "EC",
      crv: "P-256",
      alg: "ES256",
      use: "sig",
      kid: before.identity.keys.current.kid,
    });
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });

  it("after a key rotation, tokens signed with the previous key still verify against the new JWKS", async () => {
    const oldToken = await mint(before);
    const oldKid = before.identity.keys.current.kid;
    // Rotate: a new signing key, the old one kept under keys.previous until its tokens expire.
    after = await startTestFerry(
      config({ signing: "./new-signing.pem", previous: [path.join(before.dir, "signing.pem")] }),
    );
    expect(after.identity.keys.current.kid).not.toBe(oldKid);
    const jwks = createRemoteJWKSet(new URL(`${after.url}/.well-known/jwks.json`));
    const kids = (
      (await (await fetch(`${after.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }
    ).keys.map((k) => k.kid);
    expect(kids).toEqual([after.identity.keys.current.kid, oldKid]);
    const options = { issuer: PUBLIC_URL, audience: "deploy-staging", algorithms: ["ES256"] };
    expect((await jwtVerify(oldToken, jwks, options)).protectedHeader.kid).toBe(oldKid);
    const newToken = await mint(after);
    expect((await jwtVerify(newToken, jwks, options)).protectedHeader.kid).toBe(
      after.identity.keys.current.kid,
    );
  });
});
