import { Router } from "express";
import { FerryError } from "../common/errors.ts";
import type { EvidenceService } from "../evidence/bundle.ts";
import type { PolicyDocument } from "../evidence/policy-document.ts";
import { principalOf, type TokenUse } from "./auth.ts";

/** What the evidence routes need. */
export interface EvidenceRouteDeps {
  evidence: Pick<EvidenceService, "evidence">;
  /** Every environment's policy document, compiled at load. */
  policies: ReadonlyMap<string, PolicyDocument>;
  tokenUse: TokenUse;
}

/**
 * `GET /v1/promotions/{id}/evidence`: the promotion's signed summary, approval attestations and
 * audit segment with its checkpoint, for whoever may read the promotion (404 otherwise, as its GET).
 * `GET /v1/policies/{environment}`: the policy a statement's `policy.uri` names, for any
 * authenticated caller (it holds no secret: the same requirements a pipeline is checked against).
 */
export function createEvidenceRouter(deps: EvidenceRouteDeps): Router {
  const router = Router();
  router.get("/v1/promotions/:id/evidence", deps.tokenUse.reuse, async (req, res) => {
    const bundle = await deps.evidence.evidence(principalOf(res), String(req.params.id));
    res.setHeader("Cache-Control", "no-store");
    res.json(bundle);
  });
  router.get("/v1/policies/:environment", deps.tokenUse.reuse, async (req, res) => {
    const name = String(req.params.environment);
    const policy = deps.policies.get(name);
    if (policy === undefined) throw new FerryError("not_found", `no environment ${name.slice(0, 100)}`);
    res.json(policy);
  });
  return router;
}
