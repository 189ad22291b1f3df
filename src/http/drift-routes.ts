import { Router } from "express";
import type { DriftService } from "../gitops/drift.ts";
import { principalOf, type TokenUse } from "./auth.ts";

/**
 * `GET /v1/apps/{app}/environments/{env}/drift`: a read, so the caller's token is reused; read
 * access is the environment's own (docs/promotion.md "Who may read").
 */
export function createDriftRouter(service: DriftService, tokenUse: TokenUse): Router {
  const router = Router();
  router.get("/v1/apps/:app/environments/:env/drift", tokenUse.reuse, async (req, res) => {
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const report = await service.check(
      principalOf(res),
      String(req.params.app),
      String(req.params.env),
      gone.signal,
    );
    res.json({
      ...report,
      ...(report.recorded === undefined
        ? {}
        : { recorded: { ...report.recorded, since: new Date(report.recorded.since).toISOString() } }),
    });
  });
  return router;
}
