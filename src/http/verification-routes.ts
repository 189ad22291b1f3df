import { Router } from "express";
import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import type { VerificationService } from "../verify/service.ts";

const bodySchema = z.strictObject({
  image: z.string().min(1).max(1024),
  environment: z.string().min(1).max(63),
});

/**
 * `POST /v1/verifications` `{image, environment}` → the report. Mounted behind the API auth guard.
 * A denial is a normal answer (200, `allowed: false`); a tag is `tag_reference` (400).
 */
export function createVerificationRouter(service: VerificationService): Router {
  const router = Router();
  router.post("/v1/verifications", async (req, res) => {
    const parsed = bodySchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      throw new FerryError("validation_failed", "expected a JSON body {image, environment}", {
        extra: { problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
      });
    }
    const report = await service.verify(parsed.data.image, parsed.data.environment);
    res.json(report);
  });
  return router;
}
