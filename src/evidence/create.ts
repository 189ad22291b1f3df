/** Wires evidence: the `evidence` step, the evidence of a promotion, and the policy documents. */
import { auditReadRefusal } from "../audit/readers.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { ApprovalService } from "../promotion/approvals/service.ts";
import { ApprovalStore } from "../promotion/approvals/store.ts";
import type { PromotionRecord } from "../promotion/record.ts";
import type { PromotionService } from "../promotion/service.ts";
import type { ArtifactWriter } from "../registry/ports.ts";
import type { RepositoryReference } from "../registry/reference.ts";
import type { Signer } from "../signing/signer.ts";
import type { Store } from "../store/store.ts";
import { type EvidenceAuditLog, EvidenceService } from "./bundle.ts";
import { type PolicyDocument, policyDocuments } from "./policy-document.ts";
import { EvidenceStep, evidenceEnvironments } from "./step.ts";

/** What {@link createEvidence} is wired from. */
export interface EvidenceWiring {
  config: Pick<FerryConfig, "environments" | "trust" | "audit"> & { server: { publicUrl: string } };
  store: Store;
  signer: Signer;
  writerFor(ref: RepositoryReference): ArtifactWriter;
  audit: EvidenceAuditLog;
  issuerUrls: ReadonlyMap<string, string>;
  /** The compiled `require` policy's hash per environment (the verification service's `policyHash`). */
  requireHash: (environment: string) => string | undefined;
  /** Late-bound: the promotion wiring is built with the step, so these are asked for when used. */
  promotions: () => Pick<PromotionService, "get">;
  approvals: () => Pick<ApprovalService, "standings" | "view">;
}

/** The evidence parts of a running Ferry. */
export interface Evidence {
  step: EvidenceStep;
  service: EvidenceService;
  policies: ReadonlyMap<string, PolicyDocument>;
}

/** Wires the evidence step, the evidence service and the policy documents from the config. */
export function createEvidence(w: EvidenceWiring): Evidence {
  const votes = new ApprovalStore(w.store);
  const verifierId = w.config.server.publicUrl;
  const auditReaders = new Set(w.config.audit.readers);
  return {
    step: new EvidenceStep({
      signer: w.signer,
      writerFor: w.writerFor,
      verifierId,
      builders: w.config.trust.builders,
      environments: evidenceEnvironments(w.config.environments),
      approvals: async (p: PromotionRecord, at: number) =>
        w.approvals().standings(p, await votes.forPromotion(p.id), at),
      issuerUrls: w.issuerUrls,
    }),
    service: new EvidenceService({
      read: (principal, id) => w.promotions().get(principal, id),
      standings: (p) => w.approvals().view(p),
      audit: w.audit,
      signer: w.signer,
      verifierId,
      issuerUrls: w.issuerUrls,
      mayReadAudit: (principal) => auditReadRefusal(principal, auditReaders) === undefined,
    }),
    policies: policyDocuments(w.config, w.requireHash),
  };
}
