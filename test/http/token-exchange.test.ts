import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildkiteClaims,
  circleciClaims,
  githubClaims,
  gitlabClaims,
  kubernetesClaims,
} from "../identity/fixtures.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { b64json, loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { type StsFake, startStsFake } from "../support/sts-fake.ts";

const AUD = "https://ferry.example.com";
const PUBLIC_URL = "https://ferry.test";
const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token";
const ROLE = "arn:aws:iam::123456789012:role/deploy-production";
const WEB_ROLE = "arn:aws:iam::123456789012:role/deploy-web-identity";
const SESSION_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "ecs:UpdateService", Resource: "*" }],
});

let github: OidcIssuer;
let gitlab: OidcIssuer;
let kubernetes: OidcIssuer;
let buildkite: OidcIssuer;
let circleci: OidcIssuer;
let stranger: OidcIssuer;
let sts: StsFake;
let ferry: TestFerry;

const now = () => Math.floor(Date.now() / 1000);
const gh = (over: Record<string, unknown> = {}) => githubClaims({ iss: github.url, aud: AUD }, over);

beforeAll(async () => {
  [github, gitlab, kubernetes, buildkite, circleci, stranger] = await Promise.all([
    startOidcIssuer(),
    startOidcIssuer(),
    startOidcIssuer({ algorithms: ["ES256"] }),
    startOidcIssuer(),
    startOidcIssuer({ path: "/org/0f4b3ac0-6f29-4f0b-a8f2-3d8a7b1c2e4f" }),
    startOidcIssuer(),
  ]);
  sts = await startStsFake({
    callers: { AKIAFERRYTEST0000001: "ferry-test-secret" },
    roles: { [ROLE]: { maxSessionDuration: 3600 }, [WEB_ROLE]: {} },
  });
  const issuer = (name: string, i: OidcIssuer, extra: Record<string, unknown>) =>
    loopbackIssuerConfig(name, i, AUD, { rateLimit: { requests: 1000, per: "1m" }, ...extra });
  const ghRule = {
    issuer: "github",
    claims: { repository_id: "74", ref: "refs/heads/main", runner_environment: "github-hosted" },
  };
  const ghProduction = {
    issuer: "github",
    claims: {
      repository_id: "74",
      repository_owner_id: "65",
      ref: "refs/heads/main",
      event_name: ["push", "workflow_dispatch"],
      runner_environment: "github-hosted",
    },
  };
  ferry = await startTestFerry(
    {
      server: { listen: "127.0.0.1:0", publicUrl: PUBLIC_URL },
      issuers: [
        issuer("github", github, { platform: "github", jwksUri: github.jwksUri, maxTokenAge: "10m" }),
        issuer("gitlab", gitlab, { platform: "gitlab" }),
        issuer("kubernetes", kubernetes, { platform: "kubernetes", algorithms: ["ES256"] }),
        issuer("buildkite", buildkite, {
          platform: "buildkite",
          requireJti: false,
          rateLimit: { requests: 3, per: "1m" },
        }),
        issuer("circleci", circleci, { platform: "circleci", requireJti: false }),
      ],
      environments: [{ name: "staging" }, { name: "production", after: "staging" }],
      credentials: [
        {
          name: "deploy-staging",
          environment: "staging",
          type: "ferry-jwt",
          ttl: "10m",
          allow: [
            ghRule,
            { issuer: "gitlab", claims: { project_id: "20", ref: "main", ref_protected: "true" } },
            {
              issuer: "kubernetes",
              claims: {
                "kubernetes.io.namespace": "deploy",
                "kubernetes.io.serviceaccount.name": "deployer",
              },
            },
            {
              issuer: "buildkite",
              claims: { organization_slug: "acme-inc", pipeline_slug: "web", build_branch: "main" },
            },
            {
              issuer: "circleci",
              claims: { "oidc.circleci.com/project-id": "7a9e5b1c-2d3f-4e5a-8b6c-9d0e1f2a3b4c" },
            },
          ],
        },
        { name: "deploy-production", environment: "production", type: "ferry-jwt", allow: [ghProduction] },
        {
          name: "aws-production",
          environment: "production",
          type: "aws-sts",
          ttl: "15m",
          aws: {
            roleArn: ROLE,
            endpoint: sts.url,
            maxSessionDuration: "1h",
            sessionPolicy: SESSION_POLICY,
            sessionTags: {
              repository: "repository",
              ref: "ref",
              "run-id": "run_id",
              workflow: "workflow_ref",
            },
          },
          allow: [ghProduction],
        },
        {
          name: "aws-web-identity",
          environment: "production",
          type: "aws-sts",
          aws: { roleArn: WEB_ROLE, endpoint: sts.url, mode: "web-identity" },
          allow: [ghProduction],
        },
      ],
    },
    {
      identity: {
        awsCredentials: { accessKeyId: "AKIAFERRYTEST0000001", secretAccessKey: "ferry-test-secret" },
      },
    },
  );
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([github, gitlab, kubernetes, buildkite, circleci, stranger, sts].map((s) => s?.stop()));
});

let requestCounter = 0;

async function exchange(
  token: string,
  audience: string,
  options: { json?: boolean; extra?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers; requestId: string }> {
  const params = {
    grant_type: GRANT,
    subject_token: token,
    subject_token_type: ID_TOKEN,
    audience,
    ...options.extra,
  };
  const requestId = `test-exchange-${++requestCounter}-${Date.now()}`;
  const res = await fetch(`${ferry.url}/v1/token`, {
    method: "POST",
    headers: {
      "content-type": options.json ? "application/json" : "application/x-www-form-urlencoded",
      "x-request-id": requestId,
    },
    body: options.json ? JSON.stringify(params) : new URLSearchParams(params).toString(),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
    requestId,
  };
}

async function auditRecord(requestId: string) {
  return ferry.store.db
    .selectFrom("token_exchanges")
    .selectAll()
    .where("request_id", "=", requestId)
    .executeTakeFirst();
}

describe("granted exchanges", () => {
  it("mints a ferry-jwt that verifies against Ferry's published JWKS with jose", async () => {
    const token = await github.sign(gh());
    const res = await exchange(token, "deploy-staging");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toMatchObject({
      issued_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_type: "Bearer",
      expires_in: 600,
    });
    const discovery = (await (await fetch(`${ferry.url}/.well-known/openid-configuration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    expect(discovery.issuer).toBe(PUBLIC_URL);
    expect(discovery.jwks_uri).toBe(`${PUBLIC_URL}/.well-known/jwks.json`);
    // The test reaches Ferry on its loopback address; the JWKS path is the one the discovery names.
    const jwks = createRemoteJWKSet(new URL(`${ferry.url}${new URL(discovery.jwks_uri).pathname}`));
    const { payload, protectedHeader } = await jwtVerify(res.body.access_token as string, jwks, {
      issuer: PUBLIC_URL,
      audience: "deploy-staging",
      algorithms: ["ES256"],
    });
    expect(protectedHeader.kid).toBe(ferry.identity.keys.current.kid);
    expect(payload).toMatchObject({
      sub: "repo:acme/web:ref:refs/heads/main",
      act: { iss: github.url, sub: "repo:acme/web:ref:refs/heads/main" },
      environment: "staging",
      credential: "deploy-staging",
    });
    expect(typeof payload.jti).toBe("string");
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(600);
    const record = await auditRecord(res.requestId);
    expect(record).toMatchObject({
      decision: "granted",
      reason: "granted",
      issuer: github.url,
      subject: "repo:acme/web:ref:refs/heads/main",
      credential: "deploy-staging",
      issued_id: payload.jti,
    });
    expect(record!.token_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(record)).not.toContain(token);
  });

  it("accepts the JSON encoding too, and GitHub's immutable sub form", async () => {
    const token = await github.sign(gh({ sub: "repo:acme@65/web@74:ref:refs/heads/main" }));
    const res = await exchange(token, "deploy-staging", { json: true });
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe("Bearer");
  });

  it.each([
    ["gitlab", () => gitlab.sign(gitlabClaims({ iss: gitlab.url, aud: AUD }))],
    [
      "kubernetes",
      () =>
        kubernetes.sign(
          kubernetesClaims({ iss: kubernetes.url, aud: ["https://kubernetes.default.svc", AUD] }),
        ),
    ],
    ["circleci", () => circleci.sign(circleciClaims({ iss: circleci.url, aud: AUD }))],
  ])("grants a %s token with its real claim shapes", async (_name, make) => {
    const res = await exchange(await make(), "deploy-staging");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it("aws-sts assume-role: STS receives the session name, tags, source identity, policy and duration", async () => {
    const before = sts.calls.length;
    const token = await github.sign(gh());
    const res = await exchange(token, "aws-production");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const call = sts.calls[before]!;
    expect(call).toMatchObject({ action: "AssumeRole", outcome: "ok", accessKeyId: "AKIAFERRYTEST0000001" });
    expect(call.params).toMatchObject({
      RoleArn: ROLE,
      RoleSessionName: "gh-acme-web-9876543210-1",
      SourceIdentity: "octocat",
      DurationSeconds: "900",
      Policy: SESSION_POLICY,
    });
    expect(call.tags).toEqual([
      { Key: "repository", Value: "acme/web" },
      { Key: "ref", Value: "refs/heads/main" },
      { Key: "run-id", Value: "9876543210" },
      { Key: "workflow", Value: "acme/web/.github/workflows/release.yml@refs/heads/main" },
    ]);
    const aws = res.body.aws as {
      accessKeyId: string;
      secretAccessKey: string;
      sessionToken: string;
      expiration: string;
    };
    expect(aws.accessKeyId).toMatch(/^ASIA/);
    expect(aws.secretAccessKey.length).toBeGreaterThan(20);
    expect(res.body.access_token).toBe(aws.sessionToken);
    expect(res.body).toMatchObject({
      token_type: "N_A",
      issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
    });
    expect(res.body.expires_in as number).toBeGreaterThan(880);
    expect(res.body.expires_in as number).toBeLessThanOrEqual(900);
    expect(Date.parse(aws.expiration)).toBeGreaterThan(Date.now());
    expect(await auditRecord(res.requestId)).toMatchObject({
      decision: "granted",
      issued_id: aws.accessKeyId,
    });
    expect(ferry.logText()).not.toContain(aws.secretAccessKey);
    expect(ferry.logText()).not.toContain(aws.sessionToken);
  });

  it("aws-sts web-identity passes the pipeline's own token to AssumeRoleWithWebIdentity, unsigned", async () => {
    const before = sts.calls.length;
    const token = await github.sign(gh());
    const res = await exchange(token, "aws-web-identity");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const call = sts.calls[before]!;
    expect(call).toMatchObject({
      action: "AssumeRoleWithWebIdentity",
      outcome: "ok",
      accessKeyId: undefined,
    });
    expect(call.params.WebIdentityToken).toBe(token);
    expect(call.tags).toEqual([]);
  });
});

interface BadToken {
  name: string;
  token: () => Promise<string>;
  reason: string;
  error: string;
  status: number;
  audience?: string;
}

/** A token signed with a key the issuer never published, but carrying the issuer's own `kid`. */
async function forgedWithIssuerKid(): Promise<string> {
  const { privateKey } = await generateKeyPair("RS256");
  return new SignJWT(gh())
    .setProtectedHeader({ alg: "RS256", kid: github.keys.at(-1)!.kid })
    .sign(privateKey);
}

async function withHeader(header: Record<string, unknown>): Promise<string> {
  return github.sign(gh(), { header });
}

const attackerKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });

const BAD_TOKENS: BadToken[] = [
  {
    name: "alg none, empty signature",
    token: async () => `${b64json({ alg: "none", typ: "JWT" })}.${b64json(gh())}.`,
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "alg none with a dummy signature",
    token: async () => `${b64json({ alg: "none", typ: "JWT" })}.${b64json(gh())}.AAAA`,
    reason: "algorithm_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "HS256 signed with the issuer's RSA public key as the secret",
    token: async () => {
      const pem = createPublicKey({ key: github.keys.at(-1)!.publicJwk as never, format: "jwk" })
        .export({ format: "pem", type: "spki" })
        .toString();
      return new SignJWT(gh())
        .setProtectedHeader({ alg: "HS256", kid: github.keys.at(-1)!.kid })
        .sign(new TextEncoder().encode(pem));
    },
    reason: "algorithm_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "ES256 token from an RS256-only issuer",
    token: async () => {
      const { privateKey } = await generateKeyPair("ES256");
      return new SignJWT(gh()).setProtectedHeader({ alg: "ES256", kid: "x" }).sign(privateKey);
    },
    reason: "algorithm_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "unknown kid",
    token: () => github.sign(gh(), { headerKid: "no-such-key" }),
    reason: "key_unknown",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "signed by another key under the issuer's kid",
    token: forgedWithIssuerKid,
    reason: "signature_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "payload altered after signing",
    token: async () => {
      const [h, , s] = (await github.sign(gh())).split(".");
      return `${h}.${b64json(gh({ repository_id: "75" }))}.${s}`;
    },
    reason: "signature_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "injected jwk header (attacker's own key)",
    token: async () => {
      const jwk = await exportJWK(attackerKeys.publicKey);
      return new SignJWT(gh()).setProtectedHeader({ alg: "RS256", jwk }).sign(attackerKeys.privateKey);
    },
    reason: "header_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "injected jku header",
    token: () => withHeader({ jku: "https://attacker.example/jwks.json" }),
    reason: "header_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "injected x5u header",
    token: () => withHeader({ x5u: "https://attacker.example/cert.pem" }),
    reason: "header_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "injected x5c header",
    token: () => withHeader({ x5c: ["MIIBdummy"] }),
    reason: "header_not_allowed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "look-alike issuer: trailing slash",
    token: () => github.sign(gh({ iss: `${github.url}/` })),
    reason: "issuer_unknown",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "look-alike issuer: https instead of http",
    token: () => github.sign(gh({ iss: github.url.replace("http:", "https:") })),
    reason: "issuer_unknown",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "look-alike issuer: other host (localhost)",
    token: () => github.sign(gh({ iss: github.url.replace("127.0.0.1", "localhost") })),
    reason: "issuer_unknown",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "look-alike issuer: the real GitHub, not registered here",
    token: () => github.sign(gh({ iss: "https://token.actions.githubusercontent.com" })),
    reason: "issuer_unknown",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "audience of another service",
    token: () => github.sign(gh({ aud: "https://vault.example.com" })),
    reason: "audience_mismatch",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "GitHub's default audience https://github.com/<owner>",
    token: () => github.sign(gh({ aud: "https://github.com/acme" })),
    reason: "audience_mismatch",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "audience list without Ferry's",
    token: () => github.sign(gh({ aud: ["https://a.example", "https://b.example"] })),
    reason: "audience_mismatch",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "expired beyond leeway",
    token: () => github.sign(gh({ iat: now() - 400, nbf: now() - 400, exp: now() - 61 })),
    reason: "token_expired",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "nbf in the future beyond leeway",
    token: () => github.sign(gh({ nbf: now() + 120 })),
    reason: "token_not_yet_valid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "iat in the future beyond leeway",
    token: () => github.sign(gh({ iat: now() + 120, nbf: now() })),
    reason: "token_issued_in_future",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "older than maxTokenAge (10m)",
    token: () => github.sign(gh({ iat: now() - 11 * 60, nbf: now() - 11 * 60, exp: now() + 300 })),
    reason: "token_too_old",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "no jti from an issuer that requires one",
    token: () => github.sign(gh({ jti: undefined })),
    reason: "jti_missing",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "oversized (over 16 KiB)",
    token: () => github.sign(gh({ padding: "x".repeat(17 * 1024) })),
    reason: "token_too_large",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "two segments",
    token: async () => `${b64json({ alg: "RS256" })}.${b64json(gh())}`,
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "four segments",
    token: async () => `${await github.sign(gh())}.AAAA`,
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "characters outside base64url",
    token: async () => (await github.sign(gh())).replace(/\.(.)/, ".!"),
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "non-JSON payload",
    token: async () =>
      `${b64json({ alg: "RS256", kid: github.keys.at(-1)!.kid })}.${Buffer.from("hello, world").toString("base64url")}.AAAA`,
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "payload that is a JSON list",
    token: async () => `${b64json({ alg: "RS256" })}.${b64json([gh()])}.AAAA`,
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "non-JSON header",
    token: async () => `${Buffer.from("{alg:RS256").toString("base64url")}.${b64json(gh())}.AAAA`,
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "not a JWT at all",
    token: async () => "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
    reason: "token_malformed",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "claim of the wrong type: GitHub repository_id as a number",
    token: () => github.sign(gh({ repository_id: 74 })),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "claim of the wrong type: exp as a string",
    token: () => github.sign(gh({ exp: String(now() + 300) })),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "claim of the wrong type: GitLab runner_id as a string",
    token: () => gitlab.sign(gitlabClaims({ iss: gitlab.url, aud: AUD }, { runner_id: "1" })),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "GitLab ref with refs/heads/ (GitHub's form)",
    token: () => gitlab.sign(gitlabClaims({ iss: gitlab.url, aud: AUD }, { ref: "refs/heads/main" })),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "Kubernetes sub that disagrees with kubernetes.io",
    token: () =>
      kubernetes.sign(
        kubernetesClaims(
          { iss: kubernetes.url, aud: AUD },
          { sub: "system:serviceaccount:kube-system:admin" },
        ),
      ),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "Buildkite build_number as a string",
    token: () => buildkite.sign(buildkiteClaims({ iss: buildkite.url, aud: AUD }, { build_number: "1042" })),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "no sub",
    token: () => github.sign(gh({ sub: undefined })),
    reason: "claims_invalid",
    error: "invalid_grant",
    status: 400,
  },
  {
    name: "a pull_request run asking for a production credential",
    token: () =>
      github.sign(
        gh({ event_name: "pull_request", ref: "refs/heads/main", sub: "repo:acme/web:pull_request" }),
      ),
    audience: "deploy-production",
    reason: "policy_denied",
    error: "access_denied",
    status: 403,
  },
  {
    name: "a pull_request_target run asking for production AWS",
    token: () => github.sign(gh({ event_name: "pull_request_target" })),
    audience: "aws-production",
    reason: "policy_denied",
    error: "access_denied",
    status: 403,
  },
  {
    name: "a fork's run (same name, other repository id and owner)",
    token: () =>
      github.sign(
        gh({
          repository: "mallory/web",
          repository_owner: "mallory",
          repository_id: "990001",
          repository_owner_id: "990002",
          sub: "repo:mallory/web:ref:refs/heads/main",
        }),
      ),
    reason: "policy_denied",
    error: "access_denied",
    status: 403,
  },
  {
    name: "a self-hosted runner where the policy wants github-hosted",
    token: () => github.sign(gh({ runner_environment: "self-hosted" })),
    reason: "policy_denied",
    error: "access_denied",
    status: 403,
  },
  {
    name: "a token from an unregistered issuer",
    token: () => stranger.sign(gh({ iss: stranger.url })),
    reason: "issuer_unknown",
    error: "invalid_grant",
    status: 400,
  },
];

describe("a corpus of bad tokens, each refused with the right error and no credential", () => {
  it("has at least 30 cases", () => {
    expect(BAD_TOKENS.length).toBeGreaterThanOrEqual(30);
  });

  it.each(BAD_TOKENS)("$name → $reason", async (bad) => {
    const token = await bad.token();
    const res = await exchange(token, bad.audience ?? "deploy-staging");
    expect(res.body).toMatchObject({ error: bad.error, reason: bad.reason, request_id: res.requestId });
    expect(res.status).toBe(bad.status);
    expect(typeof res.body.error_description).toBe("string");
    expect(res.body).not.toHaveProperty("access_token");
    expect(res.body).not.toHaveProperty("aws");
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const record = await auditRecord(res.requestId);
    expect(record).toMatchObject({ decision: "refused", reason: bad.reason, issued_id: null });
    expect(ferry.logText()).not.toContain(token);
  });

  it("a replayed token is refused, and the unregistered issuer never received a request", async () => {
    const token = await github.sign(gh());
    expect((await exchange(token, "deploy-staging")).status).toBe(200);
    const again = await exchange(token, "deploy-staging");
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: "invalid_grant", reason: "token_replayed" });
    expect(again.body).not.toHaveProperty("access_token");
    expect(stranger.requests).toEqual([]);
  });

  it("logs a policy mismatch claim by claim, and tells the caller only the reason", async () => {
    const token = await github.sign(gh({ event_name: "pull_request", sub: "repo:acme/web:pull_request" }));
    const res = await exchange(token, "deploy-production");
    expect(res.status).toBe(403);
    expect(JSON.stringify(res.body)).not.toContain("event_name");
    const line = ferry.logs.find((l) => l.requestId === res.requestId && l.msg === "token exchange refused");
    expect(line).toMatchObject({
      reason: "policy_denied",
      credential: "deploy-production",
      rules: [{ rule: 1, failed: [{ claim: "event_name", actual: '"pull_request"' }] }],
    });
  });
});

describe("request errors answer in RFC 6749 form", () => {
  const post = (body: string, type: string) =>
    fetch(`${ferry.url}/v1/token`, { method: "POST", headers: { "content-type": type }, body });

  it.each([
    ["an unsupported grant type", { grant_type: "client_credentials" }, 400, "unsupported_grant_type"],
    ["no subject_token", { subject_token: "" }, 400, "invalid_request"],
    [
      "an unsupported subject_token_type",
      { subject_token_type: "urn:ietf:params:oauth:token-type:saml2" },
      400,
      "invalid_request",
    ],
    ["an unknown credential", { audience: "deploy-everything" }, 400, "invalid_target"],
    ["an actor token", { actor_token: "x", actor_token_type: ID_TOKEN }, 400, "invalid_request"],
    [
      "a requested type the credential is not",
      { requested_token_type: "urn:ietf:params:oauth:token-type:saml2" },
      400,
      "invalid_request",
    ],
  ])("%s", async (_name, extra, status, error) => {
    const token = await github.sign(gh());
    const res = await exchange(token, "deploy-staging", { extra: extra as Record<string, string> });
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ error });
    expect(res.body).not.toHaveProperty("access_token");
    expect(await auditRecord(res.requestId)).toMatchObject({ decision: "refused" });
  });

  it("a repeated parameter, malformed JSON, an oversized body and a GET", async () => {
    const repeated = await post(
      `grant_type=${encodeURIComponent(GRANT)}&grant_type=x&audience=a`,
      "application/x-www-form-urlencoded",
    );
    expect(repeated.status).toBe(400);
    expect(await repeated.json()).toMatchObject({ error: "invalid_request" });
    const broken = await post('{"grant_type":', "application/json");
    expect(broken.status).toBe(400);
    expect(broken.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await broken.json()).toMatchObject({ error: "invalid_request", reason: "request_invalid" });
    const huge = await post(`subject_token=${"a".repeat(1_100_000)}`, "application/x-www-form-urlencoded");
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ error: "invalid_request", reason: "request_invalid" });
    const get = await fetch(`${ferry.url}/v1/token`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(await get.json()).toMatchObject({ error: "invalid_request" });
  });

  it("STS refusing the role is a 502 server_error; an STS outage is a 503 temporarily_unavailable", async () => {
    sts.failNext(1, 403, "AccessDenied");
    const denied = await exchange(await github.sign(gh()), "aws-production");
    expect(denied.status).toBe(502);
    expect(denied.body).toMatchObject({ error: "server_error", reason: "credential_refused" });
    expect(denied.body).not.toHaveProperty("aws");
    sts.failNext(3, 503, "ServiceUnavailable");
    const down = await exchange(await github.sign(gh()), "aws-production");
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ error: "temporarily_unavailable", reason: "credential_unavailable" });
  });
});

describe("per-identity rate limit", () => {
  it("answers 429 slow_down with Retry-After once an identity's budget is spent", async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof exchange>> | undefined;
    for (let i = 0; i < 4; i++) {
      // Buildkite sends no jti: the token itself is single-use, so each job's token differs (job_id).
      const claims = buildkiteClaims(
        { iss: buildkite.url, aud: AUD },
        { job_id: `0184990a-477b-4fa8-9968-49607448${i}` },
      );
      last = await exchange(await buildkite.sign(claims), "deploy-staging");
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last!.body).toMatchObject({ error: "slow_down", reason: "rate_limited" });
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Another identity of the same issuer has its own budget.
    const other = await exchange(
      await buildkite.sign(
        buildkiteClaims(
          { iss: buildkite.url, aud: AUD },
          { sub: "organization:acme-inc:pipeline:web:ref:refs/heads/main:commit:abc:step:other" },
        ),
      ),
      "deploy-staging",
    );
    expect(other.status).toBe(200);
  });
});

describe("JWKS refetches under a flood of unknown kids", () => {
  it("1,000 tokens with random kids cause at most one JWKS refetch in the cooldown window", async () => {
    // Warm the cache with a good token first.
    expect((await exchange(await github.sign(gh()), "deploy-staging")).status).toBe(200);
    const before = github.jwksRequests().length;
    const tokens = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        github.sign(gh(), { headerKid: `random-${i}-${Math.random()}` }),
      ),
    );
    for (let i = 0; i < tokens.length; i += 100) {
      const results = await Promise.all(tokens.slice(i, i + 100).map((t) => exchange(t, "deploy-staging")));
      for (const r of results) expect(r.body.reason).toBe("key_unknown");
    }
    expect(github.jwksRequests().length - before).toBeLessThanOrEqual(1);
  });
});
