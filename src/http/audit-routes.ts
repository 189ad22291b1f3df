import { Router } from "express";
import { z } from "zod";
import type { AuditLog } from "../audit/log.ts";
import { auditReadRefusal } from "../audit/readers.ts";
import { FerryError } from "../common/errors.ts";
import { principalOf, type TokenUse } from "./auth.ts";

/** Why a caller may not read the audit log (the `reason` of the 403; in openapi.yaml). */
export const AUDIT_REFUSALS = ["not_a_person", "not_a_reader"] as const;

/** Most entries one `GET /v1/audit` answers. */
export const AUDIT_PAGE_MAX = 10_000;

const querySchema = z.strictObject({
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(AUDIT_PAGE_MAX).default(1000),
});

/** What the audit routes need: the log, and `audit.readers`. */
export interface AuditRouteDeps {
  log: Pick<AuditLog, "read" | "checkpoint">;
  /** `audit.readers`: groups of human issuers whose members may read the log. */
  readers: readonly string[];
  tokenUse: TokenUse;
}

/**
 * `GET /v1/audit?after=SEQ&limit=N`: entries after `SEQ` in order, as JSON lines, for people in an
 * `audit.readers` group (403 `not_a_person` / `not_a_reader` otherwise; the log names identities
 * and decisions of every app). `GET /v1/audit/checkpoint`: the latest signed checkpoint, public
 * (it reveals only a size and a hash; witnesses need it without a token), 404 before the first one.
 */
export function createAuditRouter(deps: AuditRouteDeps): Router {
  const readers = new Set(deps.readers);
  const router = Router();
  router.get("/v1/audit", deps.tokenUse.reuse, async (req, res) => {
    const principal = principalOf(res);
    const refusal = auditReadRefusal(principal, readers);
    if (refusal !== undefined)
      throw new FerryError("forbidden", refusal.message, { extra: { reason: refusal.reason } });
    const parsed = querySchema.safeParse(req.query);
    if (!parsed.success) {
      throw new FerryError(
        "validation_failed",
        `expected after=SEQ (≥ 0) and limit=N (1..${AUDIT_PAGE_MAX})`,
        {
          extra: {
            problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
          },
        },
      );
    }
    const entries = await deps.log.read(parsed.data.after, parsed.data.limit);
    res.setHeader("Content-Type", "application/jsonl; charset=utf-8");
    res.setHeader("Cache-Control", "no-store");
    res.send(entries.map((e) => `${JSON.stringify(e)}\n`).join(""));
  });
  // Public (the API guard lets it through without a token): a size and a hash are no secret.
  router.get("/v1/audit/checkpoint", async (_req, res) => {
    const latest = await deps.log.checkpoint();
    if (latest === undefined) throw new FerryError("not_found", "no checkpoint has been signed yet");
    res.setHeader("Cache-Control", "no-store");
    res.json(latest);
  });
  return router;
}
