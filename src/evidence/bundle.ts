/**
 * The evidence of one promotion (`GET /v1/promotions/{id}/evidence`, `ferry evidence`): its signed
 * verification summary, its approval attestations, and its audit entries as a segment of the chain
 * with a signed checkpoint that covers them, so a third party checks all of it offline with cosign
 * and `ferry audit verify` (docs/evidence.md, "The evidence of a promotion").
 */
import type { AuditEntry, SignedCheckpoint } from "../audit/types.ts";
import { FerryError } from "../common/errors.ts";
import type { Principal } from "../identity/principal.ts";
import type { VoteStanding } from "../promotion/approvals/tally.ts";
import type { PromotionRecord } from "../promotion/record.ts";
import { signStatement } from "../signing/attachments.ts";
import type { DsseEnvelope } from "../signing/formats.ts";
import type { Signer } from "../signing/signer.ts";
import { APPROVAL_PREDICATE_TYPE, approvalPredicate, attestedVotes } from "./approval.ts";
import type { StoredEvidence } from "./step.ts";
import { VSA_PREDICATE_TYPE } from "./vsa.ts";

/** The most audit entries one evidence answer carries (a promotion that waited long spans many). */
export const EVIDENCE_SEGMENT_MAX = 5000;

/** The part of the audit log the evidence reads (`AuditLog` fits it). */
export interface EvidenceAuditLog {
  chainPending(): Promise<void>;
  entriesFor(subject: string): Promise<AuditEntry[]>;
  read(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  checkpoint(): Promise<SignedCheckpoint | undefined>;
  createCheckpoint(): Promise<SignedCheckpoint | undefined>;
}

/** What {@link EvidenceService} is built from. */
export interface EvidenceServiceDeps {
  /** A promotion the caller may read; `not_found` otherwise (the promotion service's `get`). */
  read: (principal: Principal, id: string) => Promise<PromotionRecord>;
  /** The promotion's votes and whether each counts (the approvals service's `view`). */
  standings: (promotion: PromotionRecord) => Promise<readonly VoteStanding[] | undefined>;
  audit: EvidenceAuditLog;
  signer: Signer;
  verifierId: string;
  issuerUrls: ReadonlyMap<string, string>;
  /**
   * Whether `principal` may read the audit log (`audit.readers`). The segment holds every entry of
   * its span, other apps' promotions and token exchanges with the people in them, so only those
   * readers get its entries; everyone else gets the checkpoint and the span, not the entries.
   */
  mayReadAudit: (principal: Principal) => boolean;
}

/** A signed statement: the DSSE envelope as attached, and the statement it carries. */
export interface SignedStatement {
  predicateType: string;
  envelope: DsseEnvelope;
  statement: unknown;
}

/** An approval attestation, and whether it was attached to the promoted digest. */
export interface ApprovalEvidence extends SignedStatement {
  decision: "approve" | "reject";
  /** False for a rejection: nothing was promoted to attach it to. */
  attached: boolean;
}

/** The audit entries from the promotion's first to the checkpoint's size. */
export interface AuditSegment {
  from: number;
  size: number;
  checkpoint: SignedCheckpoint;
  /** Absent when the segment is longer than {@link EVIDENCE_SEGMENT_MAX}: `omitted` says so. */
  entries?: AuditEntry[];
  omitted?: string;
}

/** What the evidence endpoint answers. */
export interface EvidenceBundle {
  promotion: {
    id: string;
    app: string;
    environment: string;
    digest: string;
    state: string;
    targetRepository: string;
  };
  /** Ferry's public key (PEM) and its id: check it against the key you got from a trusted channel. */
  key: { id: string; publicKey: string };
  /** The promoted manifest: its bytes (base64) hash to the digest, the statements' subject. */
  subject: { name: string; digest: string; mediaType: string; manifest: string } | null;
  summary: SignedStatement | null;
  approvals: ApprovalEvidence[];
  audit: AuditSegment | null;
}

const CHECKPOINT_ATTEMPTS = 3;

function statementOf(envelope: DsseEnvelope): unknown {
  return JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8"));
}

/** Builds a promotion's evidence (see the module's comment). */
export class EvidenceService {
  readonly #deps: EvidenceServiceDeps;

  constructor(deps: EvidenceServiceDeps) {
    this.#deps = deps;
  }

  /** The evidence of promotion `id`, for a caller who may read it (`not_found` otherwise). */
  async evidence(principal: Principal, id: string): Promise<EvidenceBundle> {
    const p = await this.#deps.read(principal, id);
    const step = p.steps.find((s) => s.name === "evidence");
    const stored =
      p.state === "promoted" && step?.status === "done"
        ? (step.data?.evidence as StoredEvidence | undefined)
        : undefined;
    const approvals: ApprovalEvidence[] = (stored?.approvals ?? []).map((envelope) => {
      const statement = statementOf(envelope) as { predicate?: { decision?: "approve" | "reject" } };
      return {
        predicateType: APPROVAL_PREDICATE_TYPE,
        decision: statement.predicate?.decision ?? "approve",
        attached: true,
        envelope,
        statement,
      };
    });
    if (p.state === "rejected") approvals.push(...(await this.#rejection(p)));
    return {
      promotion: {
        id: p.id,
        app: p.app,
        environment: p.environment,
        digest: p.digest,
        state: p.state,
        targetRepository: p.targetRepository,
      },
      key: { id: this.#deps.signer.keyId, publicKey: this.#deps.signer.publicKeyPem },
      subject:
        stored === undefined
          ? null
          : {
              name: p.targetRepository,
              digest: stored.subject.digest,
              mediaType: stored.subject.mediaType,
              manifest: stored.subject.manifest,
            },
      summary:
        stored === undefined
          ? null
          : {
              predicateType: VSA_PREDICATE_TYPE,
              envelope: stored.summary,
              statement: statementOf(stored.summary),
            },
      approvals,
      audit: await this.#segment(p.id, this.#deps.mayReadAudit(principal)),
    };
  }

  /**
   * The reject that ended a rejected promotion, signed now: it is not attached anywhere (nothing was
   * promoted), and its statement is built from the stored vote alone, so every answer carries the
   * same statement (ECDSA signatures differ from one signing to the next; each verifies).
   */
  async #rejection(p: PromotionRecord): Promise<ApprovalEvidence[]> {
    const votes = attestedVotes(p, (await this.#deps.standings(p)) ?? []);
    const out: ApprovalEvidence[] = [];
    for (const vote of votes) {
      const predicate = approvalPredicate({
        verifierId: this.#deps.verifierId,
        vote,
        promotion: p,
        issuerUrls: this.#deps.issuerUrls,
      });
      const { envelope } = await signStatement(
        this.#deps.signer,
        p.targetRepository,
        p.digest,
        APPROVAL_PREDICATE_TYPE,
        predicate,
      );
      out.push({
        predicateType: APPROVAL_PREDICATE_TYPE,
        decision: vote.decision,
        attached: false,
        envelope,
        statement: statementOf(envelope),
      });
    }
    return out;
  }

  /**
   * The chain from the promotion's first entry to the latest checkpoint's size. The promotion's
   * pending entries are chained first; when the latest checkpoint does not cover its last entry yet,
   * one is signed now.
   */
  async #segment(id: string, entriesToo: boolean): Promise<AuditSegment | null> {
    const { audit } = this.#deps;
    await audit.chainPending();
    const own = await audit.entriesFor(id);
    const first = own[0];
    const last = own.at(-1);
    if (first === undefined || last === undefined) return null;
    let checkpoint = await audit.checkpoint();
    for (let n = 0; n < CHECKPOINT_ATTEMPTS && (checkpoint?.checkpoint.size ?? 0) < last.seq; n++) {
      // One signing at a time per process: a signing already under way may predate the last entry.
      checkpoint = (await audit.createCheckpoint()) ?? (await audit.checkpoint());
    }
    if (checkpoint === undefined || checkpoint.checkpoint.size < last.seq)
      throw new FerryError(
        "unavailable",
        "no checkpoint covers the promotion's audit entries yet; try again",
      );
    const from = first.seq;
    const size = checkpoint.checkpoint.size;
    if (!entriesToo)
      return {
        from,
        size,
        checkpoint,
        omitted: `the entries ${from}..${size} are for audit.readers only: a segment holds every entry of its span, other promotions and the people in them too`,
      };
    if (size - from + 1 > EVIDENCE_SEGMENT_MAX)
      return {
        from,
        size,
        checkpoint,
        omitted: `the segment ${from}..${size} has more than ${EVIDENCE_SEGMENT_MAX} entries: export it with GET /v1/audit?after=${from - 1}`,
      };
    const entries: AuditEntry[] = [];
    while (entries.length < size - from + 1) {
      const after = entries.at(-1)?.seq ?? from - 1;
      const page = await audit.read(after, Math.min(1000, size - after));
      if (page.length === 0) break;
      entries.push(...page);
    }
    return { from, size, checkpoint, entries };
  }
}
