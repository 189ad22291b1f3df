import { Router } from "express";
import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import type { SigningService } from "../signing/service.ts";
import { principalOf, type TokenUse } from "./auth.ts";

const bodySchema = z.strictObject({
  image: z.string().min(1).max(1024),
  attestations: z
    .array(z.strictObject({ predicateType: z.string().min(1).max(512), predicate: z.unknown() }))
    .default([]),
});

/**
 * `POST /v1/signatures` `{image, attestations?}`: Ferry signs the digest (and attests the given
 * predicates) for the authenticated pipeline. 201 when something was written, 200 when everything
 * asked for was already there (a repeated request). It changes state, so it consumes the token: a
 * second request with the same token is `token_replayed`.
 */
export function createSignatureRouter(service: SigningService, tokenUse: TokenUse): Router {
  const router = Router();
  router.post("/v1/signatures", tokenUse.consume, async (req, res) => {
    const parsed = bodySchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      throw new FerryError(
        "validation_failed",
        "expected a JSON body {image, attestations?: [{predicateType, predicate}]}",
        {
          extra: {
            problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
          },
        },
      );
    }
    const result = await service.sign(principalOf(res), parsed.data, String(res.locals.requestId));
    res.status(result.items.some((i) => i.status === "created") ? 201 : 200).json(result);
  });
  return router;
}
