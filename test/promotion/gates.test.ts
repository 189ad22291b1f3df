import { describe, expect, it } from "vitest";
import { isFerryError } from "../../src/common/errors.ts";
import { decideGates } from "../../src/promotion/decide.ts";
import { compileFreeze } from "../../src/promotion/freeze.ts";
import {
  type EnvironmentRules,
  evaluateGates,
  type GateFacts,
  type GateResult,
} from "../../src/promotion/gates.ts";
import { checkRollback, rollbackRefusalError, sourceRepository } from "../../src/promotion/rollback.ts";
import type { Check, VerificationReport } from "../../src/verify/report.ts";

const H = 3_600_000;
const T0 = Date.parse("2026-06-01T10:00:00Z");
const DIGEST = `sha256:${"a".repeat(64)}`;
const OLD = `sha256:${"b".repeat(64)}`;

const production: EnvironmentRules = {
  name: "production",
  after: "staging",
  soak: H,
  freeze: compileFreeze([]),
  approvals: false,
};

const passing: Check = { name: "signature", passed: true, reason: "verified", message: "signed by release" };
function report(checks: Check[] = [passing], over: Partial<VerificationReport> = {}): VerificationReport {
  return {
    allowed: checks.length > 0 && checks.every((c) => c.passed),
    digest: DIGEST,
    environment: "production",
    checks,
    cached: false,
    ...over,
  };
}

function facts(over: Partial<GateFacts> = {}): GateFacts {
  return {
    now: T0,
    digest: DIGEST,
    rollback: false,
    breakGlass: false,
    source: { repository: "127.0.0.1:5000/staging/web", exists: true },
    upstream: { enteredAt: T0 - 2 * H },
    verification: report(),
    ...over,
  };
}

const byGate = (results: GateResult[]) => Object.fromEntries(results.map((r) => [r.gate, r]));
const clock = (now: number) => ({ now, createdAt: T0, maxWait: 24 * H });

describe("gates", () => {
  it("passes or skips every gate for a soaked, verified digest", () => {
    const results = evaluateGates(production, facts());
    expect(results.map((r) => [r.gate, r.status, r.reason])).toEqual([
      ["source", "passed", "source_found"],
      ["order", "passed", "promoted_upstream"],
      ["soak", "passed", "soaked"],
      ["freeze", "passed", "not_frozen"],
      ["verification", "passed", "verified"],
      ["approvals", "skipped", "not_configured"],
    ]);
    expect(decideGates(results, clock(T0)).event).toBe("start");
  });

  it("waits while the digest soaks, with until set, then passes", () => {
    const upstream = { enteredAt: T0 };
    const early = byGate(evaluateGates(production, facts({ upstream, now: T0 + 59 * 60_000 }))).soak!;
    expect(early).toMatchObject({ status: "waiting", reason: "soaking", until: T0 + H });
    const decision = decideGates(
      evaluateGates(production, facts({ upstream, now: T0 + 59 * 60_000 })),
      clock(T0),
    );
    expect(decision).toMatchObject({ event: "wait", until: T0 + H, recheckAt: T0 + H });
    expect(byGate(evaluateGates(production, facts({ upstream, now: T0 + H }))).soak).toMatchObject({
      status: "passed",
      reason: "soaked",
    });
  });

  it("fails a digest that never reached `after`, or was recalled from it", () => {
    const never = byGate(evaluateGates(production, facts({ upstream: undefined })));
    expect(never.order).toMatchObject({ status: "failed", reason: "not_promoted_upstream" });
    expect(never.soak).toMatchObject({ status: "failed", reason: "not_promoted_upstream" });
    const recalled = byGate(
      evaluateGates(production, facts({ upstream: { enteredAt: T0 - 2 * H, recalledAt: T0 - H } })),
    );
    expect(recalled.order).toMatchObject({ status: "failed", reason: "recalled_upstream" });
    expect(decideGates(evaluateGates(production, facts({ upstream: undefined })), clock(T0))).toMatchObject({
      event: "fail",
      failed: { gate: "order", reason: "not_promoted_upstream" },
    });
  });

  it("skips order and soak for the first environment, and fails a digest missing from the source", () => {
    const staging: EnvironmentRules = { name: "staging", freeze: compileFreeze([]), approvals: false };
    const results = byGate(
      evaluateGates(
        staging,
        facts({ upstream: undefined, verification: report([passing], { environment: "staging" }) }),
      ),
    );
    expect(results.order).toMatchObject({ status: "skipped", reason: "no_upstream" });
    expect(results.soak).toMatchObject({ status: "skipped", reason: "no_soak" });
    const missing = evaluateGates(staging, facts({ source: { repository: "r", exists: false } }));
    expect(byGate(missing).source).toMatchObject({ status: "failed", reason: "source_missing" });
  });

  it("copies from `after`'s repository, or the target's own with no `after` or in a rollback", () => {
    const images = { staging: "reg/staging/web", production: "reg/prod/web" };
    expect(sourceRepository(images, production, false)).toBe("reg/staging/web");
    expect(sourceRepository(images, production, true)).toBe("reg/prod/web");
    expect(sourceRepository(images, { name: "staging" }, false)).toBe("reg/staging/web");
    expect(sourceRepository(images, { name: "qa", after: "staging" }, true)).toBeUndefined();
    expect(sourceRepository(images, { name: "constructor" }, false)).toBeUndefined();
  });

  it("waits in a freeze window until it ends", () => {
    const frozen = {
      ...production,
      freeze: compileFreeze([{ from: "2026-06-01T09:00:00Z", to: "2026-06-01T12:00:00Z" }]),
    };
    const freeze = byGate(evaluateGates(frozen, facts())).freeze;
    expect(freeze).toMatchObject({
      status: "waiting",
      reason: "frozen",
      until: Date.parse("2026-06-01T12:00:00Z"),
    });
  });

  it("fails on the report's first failing check, with that check's reason", () => {
    const checks: Check[] = [
      passing,
      { name: "sbom", passed: false, reason: "no_sbom_attestation", message: "no SBOM attestation" },
      { name: "provenance", passed: false, reason: "no_trusted_provenance", message: "untrusted" },
    ];
    const v = byGate(evaluateGates(production, facts({ verification: report(checks) }))).verification;
    expect(v).toMatchObject({ status: "failed", reason: "no_sbom_attestation", check: "sbom" });
  });

  it("fails closed without a report, with a report of another digest or environment, or with no checks", () => {
    const reason = (verification: VerificationReport | undefined) =>
      byGate(evaluateGates(production, facts({ verification }))).verification!.reason;
    expect(reason(undefined)).toBe("verification_missing");
    expect(reason(report([passing], { digest: OLD }))).toBe("verification_mismatch");
    expect(reason(report([passing], { environment: "staging" }))).toBe("verification_mismatch");
    expect(reason(report([]))).toBe("no_checks");
    expect(reason(report([passing], { allowed: false }))).toBe("no_checks");
  });

  it("waits (fails closed) in an environment with approvals until approvals count, rollbacks too", () => {
    const guarded = { ...production, approvals: true };
    const results = evaluateGates(guarded, facts());
    expect(byGate(results).approvals).toMatchObject({ status: "waiting", reason: "awaiting_approvals" });
    expect(decideGates(results, clock(T0)).event).toBe("wait");
    // A rollback is no way around it either.
    expect(byGate(evaluateGates(guarded, facts({ rollback: true }))).approvals!.status).toBe("waiting");
  });
});

describe("waiting and expiry", () => {
  const soaking = (now: number) => evaluateGates(production, facts({ now, upstream: { enteredAt: now } }));

  it("waits for the latest of the waiting gates, rechecking no later than the deadline", () => {
    const frozen = {
      ...production,
      freeze: compileFreeze([{ from: "2026-06-01T09:00:00Z", to: "2026-06-01T12:00:00Z" }]),
    };
    const d = decideGates(evaluateGates(frozen, facts({ upstream: { enteredAt: T0 } })), clock(T0));
    expect(d).toMatchObject({ event: "wait", until: Date.parse("2026-06-01T12:00:00Z") });
    const long = decideGates(soaking(T0 + 23.5 * H), clock(T0 + 23.5 * H));
    expect(long).toMatchObject({ event: "wait", until: T0 + 24.5 * H, recheckAt: T0 + 24 * H });
  });

  it("ends expired once it has waited maxWait since it was requested", () => {
    expect(decideGates(soaking(T0 + 24 * H - 1), clock(T0 + 24 * H - 1)).event).toBe("wait");
    expect(decideGates(soaking(T0 + 24 * H), clock(T0 + 24 * H))).toMatchObject({
      event: "expire",
      deadline: T0 + 24 * H,
    });
  });

  it("fails rather than expires when a gate fails, and starts when nothing waits any more", () => {
    const failing = evaluateGates(
      production,
      facts({ now: T0 + 25 * H, verification: undefined, upstream: { enteredAt: T0 + 25 * H } }),
    );
    expect(decideGates(failing, clock(T0 + 25 * H)).event).toBe("fail");
    expect(
      decideGates(evaluateGates(production, facts({ now: T0 + 25 * H })), clock(T0 + 25 * H)).event,
    ).toBe("start");
  });

  it("has no until when a waiting gate does not know when it passes", () => {
    const unknown: GateResult = {
      gate: "approvals",
      status: "waiting",
      reason: "not_configured",
      message: "",
    };
    const d = decideGates([...soaking(T0), unknown], clock(T0));
    expect(d).toMatchObject({ event: "wait", until: undefined, recheckAt: T0 + 24 * H });
  });
});

describe("rollback", () => {
  const target = { current: DIGEST, previous: [OLD, DIGEST] };
  const back = { digest: OLD, rollback: true, reason: "5xx after deploy" };

  it("skips order and soak, never verification", () => {
    const f = facts({
      digest: OLD,
      rollback: true,
      upstream: undefined,
      verification: report([passing], { digest: OLD }),
    });
    const results = byGate(evaluateGates(production, f));
    expect(results.order).toMatchObject({ status: "skipped", reason: "rollback" });
    expect(results.soak).toMatchObject({ status: "skipped", reason: "rollback" });
    expect(results.verification!.status).toBe("passed");
    const unverified = facts({
      ...f,
      verification: report([{ ...passing, passed: false, reason: "no_trusted_signature" }], { digest: OLD }),
    });
    expect(decideGates(evaluateGates(production, unverified), clock(T0))).toMatchObject({
      event: "fail",
      failed: { gate: "verification", reason: "no_trusted_signature" },
    });
  });

  it("is allowed to a digest that was current before, with a reason", () => {
    expect(checkRollback(back, target)).toEqual({ ok: true });
    expect(checkRollback({ digest: OLD, rollback: false }, { previous: [] })).toEqual({ ok: true });
  });

  it("is refused without a reason, to a digest never current there, and to the current digest", () => {
    const refusal = (req: typeof back | Omit<typeof back, "reason">) => {
      const d = checkRollback(req, target);
      return d.ok ? "ok" : d.reason;
    };
    expect(refusal({ digest: OLD, rollback: true })).toBe("rollback_reason_missing");
    expect(refusal({ ...back, reason: "  " })).toBe("rollback_reason_missing");
    expect(refusal({ ...back, digest: `sha256:${"c".repeat(64)}` })).toBe("rollback_never_current");
    expect(refusal({ ...back, digest: DIGEST })).toBe("rollback_already_current");
  });

  it("maps a refusal to a 400 for a missing reason, a 409 for the target's history", () => {
    const missing = checkRollback({ digest: OLD, rollback: true }, target);
    const never = checkRollback({ ...back, digest: `sha256:${"c".repeat(64)}` }, target);
    if (missing.ok || never.ok) throw new Error("expected refusals");
    const e1 = rollbackRefusalError(missing);
    const e2 = rollbackRefusalError(never);
    expect(isFerryError(e1, "validation_failed") && e1.status).toBe(400);
    expect(isFerryError(e2, "conflict") && e2.status).toBe(409);
    expect(e2.extra).toEqual({ reason: "rollback_never_current" });
  });
});
