import { createPublicKey, type KeyObject } from "node:crypto";
import { FerryError } from "../common/errors.ts";
import { KeyedMutex } from "../common/locks.ts";
import type { ApprovalVote, VoteStanding } from "../promotion/approvals/tally.ts";
import type { PromotionRecord, StepRecord } from "../promotion/record.ts";
import {
  type StepContext,
  StepFailure,
  type StepOutcome,
  type StepRunner,
} from "../promotion/step-runner.ts";
import { sha256 } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import type { ArtifactWriter } from "../registry/ports.ts";
import { parseRepositoryReference, type RepositoryReference } from "../registry/reference.ts";
import { attestationLayer, bundleReferrer, signStatement } from "../signing/attachments.ts";
import type { DsseEnvelope } from "../signing/formats.ts";
import { attachBundle, type Published } from "../signing/publish.ts";
import type { Signer } from "../signing/signer.ts";
import { APPROVAL_PREDICATE_TYPE, approvalPredicate, attestedVotes, gatesPassedAt } from "./approval.ts";
import {
  approvalAttestation,
  classify,
  type OwnAttestation,
  pruneFallbackIndex,
  replaceLegacyAttestations,
  summaryAttestation,
} from "./attach.ts";
import { VSA_PREDICATE_TYPE, verificationSummary } from "./vsa.ts";

/** What the evidence step is built from. */
export interface EvidenceStepDeps {
  /** Ferry's signer (`keys.signing`). */
  signer: Signer;
  /** A writer for a repository: in production, `RegistryClient.repository`. */
  writerFor(ref: RepositoryReference): ArtifactWriter;
  /** `verifier.id`: Ferry's `server.publicUrl`. */
  verifierId: string;
  /** `trust.builders`. */
  builders: Readonly<Record<string, number>>;
  /** The environments whose promotions get a summary (`environments[].evidence.summary`). */
  environments: ReadonlySet<string>;
  /**
   * The promotion's votes and whether each counted at `at` (when its gates passed); without it, no
   * approval attestations are written. In production, the approvals service's standings.
   */
  approvals?: (promotion: PromotionRecord, at: number) => Promise<readonly VoteStanding[]>;
  /** Issuers' URLs by config name: approval attestations name an approver's issuer by its URL. */
  issuerUrls?: ReadonlyMap<string, string>;
}

/** Where one copy of the summary was attached. */
export interface AttachedSummary extends Published {
  format: "cosign-legacy" | "sigstore-bundle";
}

/** A signed statement ready to attach. */
interface Signed {
  envelope: DsseEnvelope;
  payload: Uint8Array;
  predicateType: string;
  own: OwnAttestation;
}

/**
 * What the step keeps under `data.evidence` (not shown on the promotion resource; served by
 * `GET /v1/promotions/{id}/evidence`): the envelopes as signed, and the promoted manifest, whose
 * bytes are the blob `cosign verify-blob-attestation` checks the statements' subject against.
 */
export interface StoredEvidence {
  summary: DsseEnvelope;
  approvals: DsseEnvelope[];
  subject: { mediaType: string; digest: string; manifest: string };
}

/**
 * The `evidence` step: signs the promotion's SLSA verification summary with Ferry's key (DSSE over
 * an in-toto statement whose subject is the target repository and digest), and an approval
 * attestation for each approval that counted (src/evidence/approval.ts), and attaches them to the
 * promoted digest in both formats Ferry reads: layers of the legacy `.att` tag, and Sigstore bundle
 * referrers (the fallback index on registries without the referrers API).
 *
 * Idempotent: the statements are built from the stored promotion and votes only (the summary's time
 * is when the copy step, whose verification it reports, finished; which approvals counted is decided
 * at the time the gates passed), so a rerun after a crash makes the same statements, and an attached
 * envelope whose payload is byte-identical and whose signature verifies with Ferry's key is found
 * instead of written again. A new summary replaces Ferry's own older ones of the same digest and
 * policy, and a promotion's approvals those of an earlier promotion of the same digest, app and
 * environment (`attach.ts`), so promoting a digest again into one repository does not pile them up.
 */
export class EvidenceStep implements StepRunner {
  readonly #deps: EvidenceStepDeps;
  readonly #publicKey: KeyObject;
  // One write at a time per digest in this process: promotions of one digest into one repository
  // (a shared staging repository, rollbacks) would otherwise race on its `.att` tag, compare-and-swap
  // on a registry that ignores If-Match, and retry each other out. Replicas still race, and retry.
  readonly #attaching = new KeyedMutex();

  constructor(deps: EvidenceStepDeps) {
    this.#deps = deps;
    this.#publicKey = createPublicKey(deps.signer.publicKeyPem);
  }

  configured(_app: string, environment: string): boolean {
    return this.#deps.environments.has(environment);
  }

  async run(p: PromotionRecord, _step: StepRecord, context: StepContext): Promise<StepOutcome> {
    const verification = p.verification;
    // The target's verification when the digest was copied; else the target is the source.
    const report = verification?.target ?? verification?.source;
    if (verification === undefined || report === undefined || !report.allowed) {
      throw new StepFailure(
        "verification_missing",
        "no verification that allowed the digest is stored with the promotion: nothing to summarise",
      );
    }
    const timeVerified = p.steps.find((s) => s.name === "copy")?.finishedAt ?? p.updatedAt;
    let predicate: ReturnType<typeof verificationSummary>;
    try {
      predicate = verificationSummary({
        verifierId: this.#deps.verifierId,
        timeVerified,
        repository: p.targetRepository,
        digest: p.digest,
        environment: p.environment,
        policyHash: verification.policyHash,
        report,
        builders: this.#deps.builders,
      });
    } catch (err) {
      throw new StepFailure("verification_mismatch", (err as Error).message, { cause: err });
    }

    const writer = this.#deps.writerFor(parseRepositoryReference(p.targetRepository));
    const subject = await writer.findManifest(p.digest, { signal: context.signal });
    if (subject === undefined)
      throw new FerryError("not_found", `${p.targetRepository}@${p.digest} is not in the target repository`);
    const { signer } = this.#deps;
    const summary = await signStatement(signer, p.targetRepository, p.digest, VSA_PREDICATE_TYPE, predicate);
    const summaryOwn = summaryAttestation({
      publicKey: this.#publicKey,
      payload: summary.payload,
      digest: p.digest,
      policyUri: predicate.policy.uri,
      timeVerified,
    });
    const votes = await this.#countedVotes(p);
    const approvalsId = {
      publicKey: this.#publicKey,
      digest: p.digest,
      promotion: { id: p.id, app: p.app, environment: p.environment },
      gatesPassedAt: gatesPassedAt(p),
    };
    const approvals: Signed[] = [];
    for (const vote of votes) {
      const statement = approvalPredicate({
        verifierId: this.#deps.verifierId,
        vote,
        promotion: p,
        issuerUrls: this.#deps.issuerUrls ?? new Map(),
      });
      const signed = await signStatement(
        signer,
        p.targetRepository,
        p.digest,
        APPROVAL_PREDICATE_TYPE,
        statement,
      );
      approvals.push({
        ...signed,
        predicateType: APPROVAL_PREDICATE_TYPE,
        own: approvalAttestation(approvalsId, signed.payload),
      });
    }
    const all: Signed[] = [{ ...summary, predicateType: VSA_PREDICATE_TYPE, own: summaryOwn }, ...approvals];
    const created = new Date(timeVerified);
    const { legacy, bundles } = await this.#attaching.run(`${p.targetRepository}@${p.digest}`, () => {
      context.signal.throwIfAborted();
      // The two formats live under different tags (`.att`, the fallback index): written side by side.
      return Promise.all([
        replaceLegacyAttestations(
          writer,
          p.digest,
          all.map((a) => ({ layer: attestationLayer(a.envelope, a.predicateType), own: a.own })),
        ),
        this.#attachBundles(writer, p.digest, subject.descriptor, all, created),
      ]).then(([legacy, bundles]) => ({ legacy, bundles }));
    });
    const attachedOf = (n: number): AttachedSummary[] => [
      { format: "cosign-legacy", status: legacy.statuses[n]!, location: legacy.location },
      { format: "sigstore-bundle", ...bundles[n]! },
    ];
    const attached = attachedOf(0);
    const digest = sha256(summary.payload);
    const written = attached.filter((a) => a.status === "created").length;
    const stored: StoredEvidence = {
      summary: summary.envelope,
      approvals: approvals.map((a) => a.envelope),
      subject: {
        mediaType: subject.descriptor.mediaType,
        digest: subject.descriptor.digest,
        manifest: Buffer.from(subject.bytes).toString("base64"),
      },
    };
    return {
      status: "done",
      message: `verification summary ${digest} ${written === 0 ? "found" : "attached"} on ${p.targetRepository}@${p.digest}${approvals.length === 0 ? "" : `, with ${approvals.length} approval attestation${approvals.length === 1 ? "" : "s"}`}`,
      data: {
        summary: {
          predicateType: VSA_PREDICATE_TYPE,
          digest,
          keyId: signer.keyId,
          attached: attached.map((a) => ({ format: a.format, status: a.status, location: a.location })),
        },
        approvals: approvals.map((a, i) => ({
          predicateType: APPROVAL_PREDICATE_TYPE,
          digest: sha256(a.payload),
          vote: votes[i]!.id,
          decision: votes[i]!.decision,
          attached: attachedOf(i + 1).map((x) => ({
            format: x.format,
            status: x.status,
            location: x.location,
          })),
        })),
        evidence: stored,
      },
    };
  }

  /** The approvals that counted when the gates passed (none for a break-glass promotion, which skipped them). */
  async #countedVotes(p: PromotionRecord): Promise<ApprovalVote[]> {
    if (this.#deps.approvals === undefined || p.breakGlass !== undefined) return [];
    return attestedVotes(p, await this.#deps.approvals(p, gatesPassedAt(p)));
  }

  /**
   * Each statement as a bundle referrer, one after the other (they share the fallback index); then,
   * when one of Ferry's superseded statements was seen, the fallback index is pruned of them.
   */
  async #attachBundles(
    writer: ArtifactWriter,
    digest: string,
    subject: Descriptor,
    all: readonly Signed[],
    created: Date,
  ): Promise<Published[]> {
    let superseded = false;
    const out: Published[] = [];
    for (const a of all) {
      const referrer = bundleReferrer(this.#deps.signer, subject, a.envelope, a.predicateType, created);
      out.push(
        await attachBundle(writer, digest, referrer, a.predicateType, async (_d, bytes) => {
          const match = classify(await bytes(), true, a.own);
          if (match === "superseded") superseded = true;
          return match === "same";
        }),
      );
    }
    // Every listed statement was just read: prune only when one of ours is now superseded.
    if (superseded && out.some((b) => b.status === "created"))
      await pruneFallbackIndex(
        writer,
        digest,
        out.map((b) => b.location),
        all.map((a) => a.own),
      );
    return out;
  }
}

/** The environments whose promotions get a summary: `environments[].evidence.summary` (default on). */
export function evidenceEnvironments(
  environments: readonly { name: string; evidence: { summary: boolean } }[],
): Set<string> {
  return new Set(environments.filter((e) => e.evidence.summary).map((e) => e.name));
}
