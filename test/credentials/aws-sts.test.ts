import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  durationSeconds,
  roleSessionName,
  sessionTags,
  sourceIdentity,
  stsName,
  tagValue,
} from "../../src/credentials/aws-names.ts";
import { AwsStsMinter } from "../../src/credentials/aws-sts.ts";
import type { CredentialConfig } from "../../src/credentials/ports.ts";
import type { Platform } from "../../src/identity/claims.ts";
import { isIdentityError } from "../../src/identity/errors.ts";
import type { VerifiedToken } from "../../src/identity/verifier.ts";
import { githubClaims, gitlabClaims, kubernetesClaims } from "../identity/fixtures.ts";
import { pipelineIssuer, verifiedToken } from "../support/identity.ts";
import { type StsFake, startStsFake } from "../support/sts-fake.ts";

const ROLE = "arn:aws:iam::123456789012:role/deploy";
const SHORT_ROLE = "arn:aws:iam::123456789012:role/short";
const base = { iss: "https://token.actions.githubusercontent.com", aud: "https://ferry.example.com" };

function verified(claims: Record<string, unknown>, platform: Platform): VerifiedToken {
  return verifiedToken({
    issuer: pipelineIssuer({ name: platform, url: String(claims.iss), audience: "x", platform }),
    subject: String(claims.sub),
    audience: ["x"],
    claims,
  });
}

describe("STS names and tags", () => {
  it("derives the session name from the run, per platform", () => {
    expect(roleSessionName(verified(githubClaims(base), "github"))).toBe("gh-acme-web-9876543210-1");
    expect(roleSessionName(verified(gitlabClaims(base), "gitlab"))).toBe("gl-acme-api-574-302");
    expect(roleSessionName(verified(kubernetesClaims(base), "kubernetes"))).toBe("k8s-deploy-deployer");
    expect(roleSessionName(verified({ ...githubClaims(base), sub: "a b" }, "generic"))).toBe("ferry-a-b");
  });

  it("sanitises to STS's charset and caps at 64 with a hash that keeps names distinct", () => {
    const long = `gh-${"very-long-organisation/".repeat(5)}`;
    const a = stsName(`${long}1`, 64);
    const b = stsName(`${long}2`, 64);
    expect(a).toHaveLength(64);
    expect(a).toMatch(/^[\w+=,.@-]+$/);
    expect(a).not.toBe(b);
    expect(stsName("repo:acme/web:ref:refs/heads/main", 64)).toBe("repo-acme-web-ref-refs-heads-main");
    expect(stsName("é", 64)).toBe("ferry-x");
    expect(sourceIdentity(verified(githubClaims(base), "github"))).toBe("octocat");
    expect(sourceIdentity(verified(gitlabClaims(base), "gitlab"))).toBe("sample-user");
    expect(sourceIdentity(verified(kubernetesClaims(base), "kubernetes"))).toBe(
      "system-serviceaccount-deploy-deployer",
    );
  });

  it("tags from claims, in STS's tag charset and length, and refuses a missing claim", () => {
    const token = verified(githubClaims(base, { workflow: "build & deploy #1" }), "github");
    expect(sessionTags(token, { repo: "repository", wf: "workflow", attempt: "run_attempt" })).toEqual([
      { Key: "repo", Value: "acme/web" },
      { Key: "wf", Value: "build _ deploy _1" },
      { Key: "attempt", Value: "1" },
    ]);
    expect(tagValue("x".repeat(300))).toHaveLength(256);
    const k8s = verified(kubernetesClaims(base), "kubernetes");
    expect(sessionTags(k8s, { ns: "kubernetes.io.namespace" })).toEqual([{ Key: "ns", Value: "deploy" }]);
    try {
      sessionTags(token, { env: "environment" });
      expect.unreachable();
    } catch (err) {
      expect(isIdentityError(err, "claim_missing")).toBe(true);
    }
  });

  it("DurationSeconds is min(ttl, role maximum), at least 900 and at most 43200", () => {
    expect(durationSeconds(15 * 60_000, undefined)).toBe(900);
    expect(durationSeconds(5 * 60_000, undefined)).toBe(900);
    expect(durationSeconds(2 * 3_600_000, undefined)).toBe(3600);
    expect(durationSeconds(2 * 3_600_000, 4 * 3_600_000)).toBe(7200);
    expect(durationSeconds(48 * 3_600_000, 48 * 3_600_000)).toBe(43_200);
  });
});

describe("AwsStsMinter against the STS fake", () => {
  let sts: StsFake;
  beforeAll(async () => {
    sts = await startStsFake({
      callers: { AKIAFERRY: "right-secret" },
      roles: { [ROLE]: { maxSessionDuration: 7200 }, [SHORT_ROLE]: { maxSessionDuration: 3600 } },
    });
  });
  afterAll(async () => {
    await sts?.stop();
  });

  const credential = (
    aws: Partial<NonNullable<CredentialConfig["aws"]>>,
    ttl = 900_000,
  ): CredentialConfig => ({
    name: "aws-deploy",
    environment: "production",
    type: "aws-sts",
    ttl,
    allow: [],
    aws: { roleArn: ROLE, region: "us-east-1", mode: "assume-role", endpoint: sts.url, ...aws },
  });
  const minter = (secret = "right-secret") =>
    new AwsStsMinter({ credentials: { accessKeyId: "AKIAFERRY", secretAccessKey: secret } });
  const mint = (m: AwsStsMinter, cred: CredentialConfig) =>
    m.mint({
      credential: cred,
      token: verified(githubClaims(base), "github"),
      subjectToken: "eyJ.x.y",
      requestId: "r",
    });

  async function reason(promise: Promise<unknown>): Promise<string> {
    try {
      await promise;
      return "minted";
    } catch (err) {
      if (isIdentityError(err)) return err.reason;
      throw err;
    }
  }

  it("signs AssumeRole with Ferry's identity and honours the role maximum", async () => {
    const before = sts.calls.length;
    const issued = await mint(minter(), credential({ maxSessionDuration: 7_200_000 }, 2 * 3_600_000));
    expect(sts.calls[before]).toMatchObject({
      action: "AssumeRole",
      outcome: "ok",
      accessKeyId: "AKIAFERRY",
    });
    expect(sts.calls[before]!.params.DurationSeconds).toBe("7200");
    expect(issued.expiresIn).toBeGreaterThan(7100);
    expect(issued.aws?.accessKeyId).toBe(issued.id);
  });

  it("a duration over the role's maximum is STS's ValidationError: refused, not retried", async () => {
    const before = sts.calls.length;
    expect(
      await reason(
        mint(minter(), credential({ roleArn: SHORT_ROLE, maxSessionDuration: 7_200_000 }, 7_200_000)),
      ),
    ).toBe("credential_refused");
    expect(sts.calls.slice(before).map((c) => c.outcome)).toEqual(["ValidationError"]);
  });

  it("a wrong secret fails the fake's SigV4 check", async () => {
    const before = sts.calls.length;
    expect(await reason(mint(minter("wrong-secret"), credential({})))).toBe("credential_refused");
    expect(sts.calls.slice(before).map((c) => c.outcome)).toEqual(["SignatureDoesNotMatch"]);
  });

  it("an oversized session policy and too many tags are refused by STS's rules", async () => {
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "*", Resource: "x".repeat(2100) }],
    });
    expect(await reason(mint(minter(), credential({ sessionPolicy: policy })))).toBe("credential_refused");
    const tags = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, "repository"]));
    expect(await reason(mint(minter(), credential({ sessionTags: tags })))).toBe("credential_refused");
    expect(sts.calls.slice(-2).map((c) => c.outcome)).toEqual(["PackedPolicyTooLarge", "ValidationError"]);
  });

  it("retries throttling and 5xx (three attempts in all), then reports STS unavailable", async () => {
    sts.failNext(1, 400, "Throttling");
    const before = sts.calls.length;
    expect(await reason(mint(minter(), credential({})))).toBe("minted");
    expect(sts.calls.slice(before).map((c) => c.outcome)).toEqual(["Throttling", "ok"]);
    sts.failNext(3, 500, "InternalFailure");
    expect(await reason(mint(minter(), credential({})))).toBe("credential_unavailable");
  });

  it("an unknown role is AccessDenied (credential_refused)", async () => {
    expect(await reason(mint(minter(), credential({ roleArn: "arn:aws:iam::123456789012:role/none" })))).toBe(
      "credential_refused",
    );
    expect(sts.calls.at(-1)!.outcome).toBe("AccessDenied");
  });

  it("web identity sends the token unsigned, without tags or source identity", async () => {
    const issued = await mint(
      new AwsStsMinter(),
      credential({ mode: "web-identity", sessionTags: { repo: "repository" } }),
    );
    const call = sts.calls.at(-1)!;
    expect(call).toMatchObject({
      action: "AssumeRoleWithWebIdentity",
      outcome: "ok",
      accessKeyId: undefined,
    });
    expect(call.params.WebIdentityToken).toBe("eyJ.x.y");
    expect(call.params.SourceIdentity).toBeUndefined();
    expect(issued.tokenType).toBe("N_A");
  });
});
