import { Router } from "express";
import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import type { SigningService } from "../signing/service.ts";
import { principalOf } from "./auth.ts";

const bodySchema = z.strictObject({
  image: z.string().min(1).max(1024),
  attestations: z
    .array(z.strictObject({ predicateType: z.string().min(1).max(512), predicate: z.unknown() }))
    .default([]),
});

/**
 * `POST /v1/signatures` `{image, attestations?}`: Ferry signs the digest (and attests the given
 * predicates) for the authenticated pipeline. 201 when something was written, 200 when everything
 * asked for was already there (a repeated request).
 */
export function createSignatureRouter(service: SigningService): Router {
  const router = Router();
  router.post("/v1/signatures", async (req, res) => {
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
