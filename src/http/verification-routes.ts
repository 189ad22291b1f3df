import { Router } from "express";
import { z } from "zod";
import { actorOf } from "../audit/actor.ts";
import type { AuditSink } from "../audit/log.ts";
import { FerryError } from "../common/errors.ts";
import type { Rate, RateLimiter } from "../common/rate-limit.ts";
import { parseDigestReference } from "../registry/reference.ts";
import type { VerificationService } from "../verify/service.ts";
import { principalOf, type TokenUse } from "./auth.ts";
import type { VerificationAccess } from "./verification-access.ts";

const bodySchema = z.strictObject({
  image: z.string().min(1).max(1024),
  environment: z.string().min(1).max(63),
});

/** What the verification route needs. */
export interface VerificationRouteDeps {
  service: VerificationService;
  /** Who may verify what; decided before any registry request. */
  access: VerificationAccess;
  /** Per-identity budget (`verification.rateLimit`), keyed by issuer and `sub`. */
  limiter: RateLimiter;
  rate: Rate;
  tokenUse: TokenUse;
  /** Where each verification asked here is appended (a `verification` entry, refusals included). */
  audit?: AuditSink;
}

/**
 * `POST /v1/verifications` `{image, environment}` → the report. Mounted behind the API auth guard;
 * reading only, it does not consume the token. Order: body → tag check (`tag_reference`, 400) →
 * per-identity rate limit (`rate_limited`, 429) → access (`forbidden`, 403, with a `reason`) → the
 * verification. A denial is a normal answer (200, `allowed: false`).
 */
export function createVerificationRouter(deps: VerificationRouteDeps): Router {
  const router = Router();
  router.post("/v1/verifications", deps.tokenUse.reuse, async (req, res) => {
    const principal = principalOf(res);
    const parsed = bodySchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      throw new FerryError("validation_failed", "expected a JSON body {image, environment}", {
        extra: { problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
      });
    }
    const { image, environment } = parsed.data;
    const ref = parseDigestReference(image);
    const limited = deps.limiter.take(`${principal.issuer.url}\n${principal.subject}`, deps.rate);
    if (!limited.allowed) {
      res.setHeader("Retry-After", String(limited.retryAfterSeconds));
      throw new FerryError("rate_limited", "too many verifications for this identity; retry later", {
        extra: { retryAfter: limited.retryAfterSeconds },
      });
    }
    const decision = deps.access.decide(principal, `${ref.registry}/${ref.repository}`, environment);
    if (!decision.allowed) {
      req.log?.info(
        {
          reason: decision.reason,
          issuer: principal.issuer.name,
          sub: principal.subject.slice(0, 200),
          environment,
          ...decision.detail,
        },
        "verification refused",
      );
      await deps.audit?.append({
        type: "verification",
        actor: actorOf(principal),
        subject: ref.digest,
        outcome: "refused",
        reason: decision.reason,
        data: { repository: `${ref.registry}/${ref.repository}`, environment },
      });
      throw new FerryError("forbidden", decision.message, { extra: { reason: decision.reason } });
    }
    const report = await deps.service.verify(image, environment);
    // The answer waits for its entry: a decision Ferry could not record is not given (fail closed).
    await deps.audit?.append({
      type: "verification",
      actor: actorOf(principal),
      subject: report.digest,
      outcome: report.allowed ? "allowed" : "denied",
      reason: report.allowed ? undefined : (report.checks.find((c) => !c.passed)?.reason ?? "no_checks"),
      data: {
        repository: `${ref.registry}/${ref.repository}`,
        environment,
        cached: report.cached,
        checks: report.checks.map((c) => ({ name: c.name, passed: c.passed, reason: c.reason })),
      },
    });
    res.json(report);
  });
  return router;
}
