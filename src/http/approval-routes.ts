import { Router } from "express";
import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import type { ApprovalService } from "../promotion/approvals/service.ts";
import { approvalResource, promotionResource } from "../promotion/resource.ts";
import { principalOf, type TokenUse } from "./auth.ts";

/** The longest comment kept with a vote. */
export const COMMENT_MAX = 2000;

const voteSchema = z.strictObject({
  decision: z.enum(["approve", "reject"]),
  comment: z.string().max(COMMENT_MAX).optional(),
});

/**
 * The approvals API (docs/approvals.md): `POST /v1/promotions/{id}/approvals` votes (it changes
 * state, so it consumes the person's token) and answers the promotion with its approvals and the
 * caller's vote; `GET /v1/approvals/pending` is the caller's inbox.
 */
export function createApprovalRouter(approvals: ApprovalService, tokenUse: TokenUse): Router {
  const router = Router();

  router.post("/v1/promotions/:id/approvals", tokenUse.consume, async (req, res) => {
    const parsed = voteSchema.safeParse(req.body ?? {});
    if (!parsed.success)
      throw new FerryError("validation_failed", "expected a JSON body {decision: approve|reject, comment?}", {
        extra: {
          reason: "invalid_vote",
          problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
        },
      });
    const { promotion, vote } = await approvals.vote(principalOf(res), String(req.params.id), parsed.data);
    res.setHeader("ETag", `"${promotion.version}"`);
    res.status(200).json({
      ...promotionResource(promotion, await approvals.view(promotion)),
      vote: approvalResource(vote),
    });
  });

  router.get("/v1/approvals/pending", tokenUse.reuse, async (_req, res) => {
    const pending = await approvals.pending(principalOf(res));
    res.json({
      items: pending.map((p) => ({
        id: p.promotion.id,
        app: p.promotion.app,
        digest: p.promotion.digest,
        to: p.promotion.environment,
        requestedBy: promotionResource(p.promotion).requestedBy,
        createdAt: new Date(p.promotion.createdAt).toISOString(),
        needs: p.needs,
      })),
    });
  });

  return router;
}
