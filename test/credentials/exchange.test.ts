import { describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { createLogger } from "../../src/common/logger.ts";
import { RateLimiter } from "../../src/common/rate-limit.ts";
import { type ExchangeRecorder, MemoryExchangeRecorder } from "../../src/credentials/audit.ts";
import { createTokenExchangeService, type ExchangeParams } from "../../src/credentials/exchange.ts";
import type { CredentialConfig, CredentialMinter, MintRequest } from "../../src/credentials/ports.ts";
import { IdentityError } from "../../src/identity/errors.ts";
import { compilePolicy } from "../../src/identity/policy.ts";
import { MemoryReplayGuard } from "../../src/identity/replay.ts";
import type { TokenVerifier, VerifiedToken } from "../../src/identity/verifier.ts";
import { pipelineIssuer, verifiedToken } from "../support/identity.ts";
import { identityReasonOf } from "../support/outcomes.ts";

const issuer = pipelineIssuer();

/** A verifier that accepts tokens named `good:<repository_id>` and refuses everything else. */
function fakeVerifier(calls: string[]) {
  return {
    async verify(token: string): Promise<VerifiedToken> {
      calls.push(token);
      const match = /^good:(\d+)(?::(.*))?$/.exec(token);
      if (!match) throw new IdentityError("signature_invalid", "bad signature");
      return verifiedToken({
        issuer,
        claims: { repository_id: match[1] },
        jti: token,
        sha256: "1".repeat(64),
        replayKey: token,
      });
    },
    issuerByUrl: () => issuer,
  } satisfies TokenVerifier;
}

function fakeMinter(minted: MintRequest[], fail?: Error) {
  return {
    async mint(request: MintRequest) {
      minted.push(request);
      if (fail) throw fail;
      return {
        accessToken: "minted-token",
        issuedTokenType: "urn:ietf:params:oauth:token-type:jwt",
        tokenType: "Bearer" as const,
        expiresIn: 300,
        expiresAt: 1_000_300_000,
        id: "issued-1",
      };
    },
  } satisfies CredentialMinter;
}

const credential: CredentialConfig = {
  name: "deploy",
  environment: "staging",
  type: "ferry-jwt",
  ttl: 300_000,
  allow: [{ issuer: "github", claims: { repository_id: "74" } }],
};

function setup(options: { recorder?: ExchangeRecorder; mintError?: Error; rate?: number } = {}) {
  const verified: string[] = [];
  const minted: MintRequest[] = [];
  const recorder = new MemoryExchangeRecorder();
  const replay = new MemoryReplayGuard();
  const lines: string[] = [];
  const logger = createLogger("info", { write: (l: string) => lines.push(l) });
  const clock = new FakeClock(1_000_000_000_000);
  const service = createTokenExchangeService({
    verifier: fakeVerifier(verified),
    replay,
    recorder: options.recorder ?? recorder,
    limiter: new RateLimiter({ clock }),
    rates: new Map([[issuer.url, { requests: options.rate ?? 100, perMs: 60_000 }]]),
    credentials: new Map([[credential.name, credential]]),
    policies: new Map([
      [credential.name, compilePolicy("credential deploy", credential.allow, "credentials[0].allow")],
    ]),
    minters: { "ferry-jwt": fakeMinter(minted, options.mintError), "aws-sts": fakeMinter(minted) },
    logger,
    clock,
  });
  return { service, verified, minted, recorder, replay, lines };
}

const request = (over: Partial<ExchangeParams> = {}): ExchangeParams => ({
  grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
  subject_token: "good:74",
  subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
  audience: "deploy",
  ...over,
});

const reasonOf = (promise: Promise<unknown>) => identityReasonOf(promise, "granted");

describe("the token exchange service", () => {
  it("grants, consuming the token and recording the grant with the issued id", async () => {
    const { service, recorder, replay, minted } = setup();
    const result = await service.exchange(request(), { requestId: "req-1" });
    expect(result).toMatchObject({ accessToken: "minted-token", credential: "deploy" });
    expect(minted[0]!.credential.name).toBe("deploy");
    expect(replay.seen.has("good:74")).toBe(true);
    expect(recorder.records).toEqual([
      {
        at: 1_000_000_000_000,
        requestId: "req-1",
        credential: "deploy",
        tokenSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        issuer: issuer.url,
        subject: "repo:acme/web:ref:refs/heads/main",
        decision: "granted",
        reason: "granted",
        issuedId: "issued-1",
        expiresAt: 1_000_300_000,
      },
    ]);
  });

  it("checks the request before verifying the token: an unknown credential costs no verification", async () => {
    const { service, verified, recorder } = setup();
    expect(await reasonOf(service.exchange(request({ audience: "nope" }), { requestId: "r" }))).toBe(
      "target_unknown",
    );
    expect(await reasonOf(service.exchange(request({ grant_type: "password" }), { requestId: "r" }))).toBe(
      "grant_type_unsupported",
    );
    expect(await reasonOf(service.exchange({ unreadable: "twice" }, { requestId: "r" }))).toBe(
      "request_invalid",
    );
    expect(verified).toEqual([]);
    expect(recorder.records.map((r) => [r.decision, r.reason])).toEqual([
      ["refused", "target_unknown"],
      ["refused", "grant_type_unsupported"],
      ["refused", "request_invalid"],
    ]);
  });

  it("a policy denial names the identity in the record, logs the failed claims, burns nothing", async () => {
    const { service, recorder, replay, minted, lines } = setup();
    expect(
      await reasonOf(service.exchange(request({ subject_token: "good:990001" }), { requestId: "r" })),
    ).toBe("policy_denied");
    expect(minted).toEqual([]);
    expect(replay.seen.size).toBe(0);
    expect(recorder.records[0]).toMatchObject({
      decision: "refused",
      reason: "policy_denied",
      issuer: issuer.url,
    });
    const line = JSON.parse(lines.find((l) => l.includes("token exchange refused"))!);
    expect(line.rules).toEqual([
      { rule: 1, failed: [{ claim: "repository_id", actual: '"990001"', expected: '"74"' }] },
    ]);
    expect(lines.join("")).not.toContain("good:990001");
  });

  it("a rate-limited request does not consume the token, so it can be retried", async () => {
    const { service, replay } = setup({ rate: 1 });
    expect(
      await reasonOf(service.exchange(request({ subject_token: "good:74:a" }), { requestId: "r" })),
    ).toBe("granted");
    const limited = service.exchange(request({ subject_token: "good:74:b" }), { requestId: "r" });
    await expect(limited).rejects.toMatchObject({ reason: "rate_limited", retryAfterSeconds: 60 });
    expect(replay.seen.has("good:74:b")).toBe(false);
  });

  it("withholds a credential whose grant cannot be recorded", async () => {
    const failing: ExchangeRecorder = {
      record: async () => {
        throw new Error("disk full");
      },
    };
    const { service, minted } = setup({ recorder: failing });
    expect(await reasonOf(service.exchange(request(), { requestId: "r" }))).toBe("internal");
    expect(minted).toHaveLength(1);
  });

  it("a refusal stays a refusal when recording it fails; an unexpected minter error is internal", async () => {
    const failing: ExchangeRecorder = {
      record: async () => {
        throw new Error("disk full");
      },
    };
    expect(
      await reasonOf(
        setup({ recorder: failing }).service.exchange(request({ subject_token: "bad" }), { requestId: "r" }),
      ),
    ).toBe("signature_invalid");
    const broken = setup({ mintError: new TypeError("boom") });
    expect(await reasonOf(broken.service.exchange(request(), { requestId: "r" }))).toBe("internal");
    expect(broken.recorder.records[0]).toMatchObject({ decision: "refused", reason: "internal" });
  });
});
