/**
 * `GET /v1/promotions/{id}/evidence` and `GET /v1/policies/{environment}` on a running Ferry: a
 * promotion approved by two release managers carries a signed summary and two approval attestations
 * (attached to the promoted digest, which cosign reads), and its audit entries with a checkpoint
 * that covers them; a rejected one carries the signed rejection, attached nowhere.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import canonicalize from "canonicalize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEntry, SignedCheckpoint } from "../../src/audit/types.ts";
import { verifySegment } from "../../src/audit/verify.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { APPROVAL_PREDICATE_TYPE } from "../../src/evidence/approval.ts";
import { EvidenceStep } from "../../src/evidence/step.ts";
import { VSA_PREDICATE_TYPE } from "../../src/evidence/vsa.ts";
import { ApprovalStore } from "../../src/promotion/approvals/store.ts";
import { PromotionStore } from "../../src/promotion/store.ts";
import { createRegistryClient } from "../../src/registry/client.ts";
import { legacyTag } from "../../src/registry/cosign-tags.ts";
import type { ArtifactWriter } from "../../src/registry/ports.ts";
import { pae } from "../../src/signing/formats.ts";
import { keySigner } from "../../src/signing/signer.ts";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { verifyAttestation } from "../support/cosign.ts";
import { callApi } from "../support/ferry.ts";
import { AUD, type EvidenceFixture, startEvidenceFixture } from "./fixture.ts";

type Envelope = { payloadType: string; payload: string; signatures: { sig: string }[] };
type Statement = {
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: Record<string, unknown> & {
    approver?: { issuer: string; subject: string; name?: string };
    policy: { uri: string; digest: { sha256: string } };
  };
};
type Evidence = {
  promotion: { id: string; digest: string; state: string; targetRepository: string };
  key: { id: string; publicKey: string };
  subject: { digest: string; manifest: string } | null;
  summary: { predicateType: string; envelope: Envelope; statement: Statement } | null;
  approvals: { decision: string; attached: boolean; envelope: Envelope; statement: Statement }[];
  audit: { from: number; size: number; checkpoint: SignedCheckpoint; entries: AuditEntry[] } | null;
};

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const schema = JSON.parse(
  readFileSync(path.join(import.meta.dirname, "../../docs/approval-predicate.schema.json"), "utf8"),
);
const validatePredicate = addFormats(new Ajv({ strict: true, allErrors: true })).compile(schema);

let f: EvidenceFixture;
let promotedId: string;
let digest: string;
let evidence: Evidence;

/** Whether Ferry's key signed the envelope (DSSE over the PAE of its payload). */
function signedByFerry(envelope: Envelope): boolean {
  const key = createPublicKey(f.ferry.signingKey.publicKeyPem);
  const data = pae(envelope.payloadType, Buffer.from(envelope.payload, "base64"));
  return envelope.signatures.some((s) =>
    verify("sha256", data, { key, dsaEncoding: "der" }, Buffer.from(s.sig, "base64")),
  );
}

async function evidenceOf(id: string, who: "main" | "auditor" = "auditor"): Promise<Evidence> {
  const res = await f.call(who, "GET", `/v1/promotions/${id}/evidence`);
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json as unknown as Evidence;
}

beforeAll(async () => {
  f = await startEvidenceFixture();
  digest = (await f.image()).digest;
  promotedId = await f.toProduction(digest);
  for (const who of ["rm1", "rm2"] as const) {
    const vote = await f.call(who, "POST", `/v1/promotions/${promotedId}/approvals`, {
      decision: "approve",
      comment: `ok from ${who}`,
    });
    expect(vote.status, JSON.stringify(vote.json)).toBe(200);
  }
  expect((await f.until(promotedId, ["promoted", "failed"])).state).toBe("promoted");
  evidence = await evidenceOf(promotedId);
});

afterAll(async () => {
  await f?.stop();
});

describe("the evidence of a promoted promotion", () => {
  it("has the signed summary, about the promoted digest in the target repository", () => {
    expect(evidence.promotion).toMatchObject({ id: promotedId, digest, state: "promoted" });
    expect(evidence.key.publicKey).toBe(f.ferry.signingKey.publicKeyPem);
    const summary = evidence.summary!;
    expect(summary.predicateType).toBe(VSA_PREDICATE_TYPE);
    expect(signedByFerry(summary.envelope)).toBe(true);
    expect(summary.statement).toEqual(JSON.parse(Buffer.from(summary.envelope.payload, "base64").toString()));
    expect(summary.statement.subject).toEqual([{ name: f.prodRepo, digest: { sha256: digest.slice(7) } }]);
    // The manifest's bytes hash to the digest: the blob cosign checks the subject against.
    const manifest = Buffer.from(evidence.subject!.manifest, "base64");
    expect(`sha256:${createHash("sha256").update(manifest).digest("hex")}`).toBe(digest);
  });

  it("has one signed approval attestation per approval that counted, valid against the documented schema", () => {
    expect(evidence.approvals).toHaveLength(2);
    const approvers = evidence.approvals.map((a) => a.statement.predicate.approver?.subject).sort();
    expect(approvers).toEqual(["rm-1", "rm-2"]);
    for (const a of evidence.approvals) {
      expect(a).toMatchObject({ decision: "approve", attached: true });
      expect(signedByFerry(a.envelope)).toBe(true);
      expect(a.statement.predicateType).toBe(APPROVAL_PREDICATE_TYPE);
      expect(a.statement.subject).toEqual([{ name: f.prodRepo, digest: { sha256: digest.slice(7) } }]);
      const who = a.statement.predicate.approver!.subject;
      expect(a.statement.predicate).toMatchObject({
        verifier: { id: AUD },
        approver: { issuer: f.sso.url, subject: who, name: `${who} name` },
        decision: "approve",
        comment: `ok from ${who === "rm-1" ? "rm1" : "rm2"}`,
        groups: ["release-managers"],
        promotion: {
          id: promotedId,
          uri: `${AUD}/v1/promotions/${promotedId}`,
          app: "web",
          environment: "production",
          from: "staging",
        },
        policy: { uri: `${AUD}/v1/policies/production` },
      });
      expect(validatePredicate(a.statement.predicate), JSON.stringify(validatePredicate.errors)).toBe(true);
    }
  });

  it("is shown on the promotion's evidence step, without the envelopes", async () => {
    const { json } = await f.call("main", "GET", `/v1/promotions/${promotedId}`);
    const step = (json.steps as { name: string; data?: Record<string, unknown> }[]).find(
      (s) => s.name === "evidence",
    )!;
    expect(step.data).toMatchObject({
      summary: { predicateType: VSA_PREDICATE_TYPE },
      approvals: [
        { predicateType: APPROVAL_PREDICATE_TYPE, decision: "approve" },
        { predicateType: APPROVAL_PREDICATE_TYPE, decision: "approve" },
      ],
    });
    expect(step.data).not.toHaveProperty("evidence");
  });

  it("has the promotion's audit entries as a segment that verifies against a checkpoint covering them", () => {
    const audit = evidence.audit!;
    const own = audit.entries.filter((e) => e.subject === promotedId);
    expect(audit.entries[0]!.subject).toBe(promotedId);
    expect(audit.entries[0]!.type).toBe("promotion_requested");
    expect(own.map((e) => e.type)).toEqual(
      expect.arrayContaining(["promotion_requested", "approval", "verification_summary", "promotion_state"]),
    );
    expect(own.filter((e) => e.type === "approval")).toHaveLength(2);
    expect(audit.checkpoint.checkpoint.size).toBeGreaterThanOrEqual(own.at(-1)!.seq);
    expect(audit.entries.at(-1)!.seq).toBe(audit.size);
    const key = f.ferry.signingKey.publicKeyPem;
    expect(verifySegment(audit.entries, audit.checkpoint, key)).toMatchObject({
      ok: true,
      from: audit.from,
      size: audit.size,
    });
    // An entry edited in transit is found.
    const edited = audit.entries.map((e) => (e.type === "approval" ? { ...e, outcome: "rejected" } : e));
    expect(verifySegment(edited, audit.checkpoint, key).ok).toBe(false);
  });

  it("gives the segment's entries to audit readers only: they hold other promotions and the people in them", async () => {
    const pipeline = await evidenceOf(promotedId, "main");
    expect(pipeline.audit).toMatchObject({ from: evidence.audit!.from, checkpoint: expect.any(Object) });
    expect(pipeline.audit).not.toHaveProperty("entries");
    expect((pipeline.audit as unknown as { omitted: string }).omitted).toContain("audit.readers");
    // Everything else of the evidence is the same for whoever may read the promotion.
    expect(pipeline.summary).toEqual(evidence.summary);
  });

  it("is attached to the promoted digest in both formats, and cosign verifies the approvals with Ferry's key", async () => {
    const pub = path.join(f.work, "ferry.pub");
    writeFileSync(pub, f.ferry.signingKey.publicKeyPem);
    for (const newBundleFormat of [false, true]) {
      const res = await verifyAttestation(`${f.prodRepo}@${digest}`, pub, APPROVAL_PREDICATE_TYPE, {
        newBundleFormat,
      });
      expect(res.code, `${newBundleFormat ? "bundle" : "legacy"}: ${res.stderr}`).toBe(0);
      const statements = res.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(Buffer.from(JSON.parse(line).payload, "base64").toString()) as Statement)
        .filter((s) => s.predicateType === APPROVAL_PREDICATE_TYPE);
      expect(statements.map((s) => s.predicate.approver?.subject).sort()).toEqual(["rm-1", "rm-2"]);
    }
  });

  it("is 404 for a caller who may not read the promotion, and 401 without a token", async () => {
    const stranger = await f.sso.sign(
      humanClaims({ iss: f.sso.url, aud: AUD }, { sub: "eve", groups: ["engineering"] }),
    );
    expect((await callApi(f.ferry, stranger, "GET", `/v1/promotions/${promotedId}/evidence`)).status).toBe(
      404,
    );
    const otherRepo = await f.github.sign(
      githubClaims({ iss: f.github.url, aud: AUD }, { repository_id: "75" }),
    );
    expect((await callApi(f.ferry, otherRepo, "GET", `/v1/promotions/${promotedId}/evidence`)).status).toBe(
      404,
    );
    const anonymous = await fetch(`${f.ferry.url}/v1/promotions/${promotedId}/evidence`);
    expect(anonymous.status).toBe(401);
    expect((await f.call("main", "GET", "/v1/promotions/nope/evidence")).status).toBe(404);
  });
});

describe("GET /v1/policies/{environment}", () => {
  it("serves the policy every statement's policy.uri names, with the hashes they carry", async () => {
    const res = await f.call("main", "GET", "/v1/policies/production");
    expect(res.status).toBe(200);
    const doc = res.json as {
      uri: string;
      config: Record<string, unknown>;
      hashes: { environment: string; require: string };
    };
    expect(doc.uri).toBe(evidence.summary!.statement.predicate.policy.uri);
    expect(doc.config).toMatchObject({
      name: "production",
      require: { signature: { authorities: ["ci"] } },
      approvals: { count: 2, groups: ["release-managers"] },
    });
    // Recomputable by anyone: SHA-256 of the RFC 8785 form of the config entry.
    const recomputed = createHash("sha256")
      .update(canonicalize(doc.config) ?? "")
      .digest("hex");
    expect(doc.hashes.environment).toBe(recomputed);
    for (const a of evidence.approvals) expect(a.statement.predicate.policy.digest.sha256).toBe(recomputed);
    expect(doc.hashes.require).toBe(evidence.summary!.statement.predicate.policy.digest.sha256);
    expect((await f.call("main", "GET", "/v1/policies/nowhere")).status).toBe(404);
    expect((await fetch(`${f.ferry.url}/v1/policies/production`)).status).toBe(401);
  });
});

describe("the evidence of a rejected promotion", () => {
  it("has the signed rejection, attached nowhere, and no summary", async () => {
    const other = (await f.image()).digest;
    const id = await f.toProduction(other);
    const vote = await f.call("rm3", "POST", `/v1/promotions/${id}/approvals`, {
      decision: "reject",
      comment: "not this one",
    });
    expect(vote.status, JSON.stringify(vote.json)).toBe(200);
    expect((await f.until(id, ["rejected"])).state).toBe("rejected");
    const e = await evidenceOf(id);
    expect(e.summary).toBeNull();
    expect(e.approvals).toHaveLength(1);
    const [rejection] = e.approvals;
    expect(rejection).toMatchObject({ decision: "reject", attached: false });
    expect(signedByFerry(rejection!.envelope)).toBe(true);
    expect(rejection!.statement.predicate).toMatchObject({
      decision: "reject",
      comment: "not this one",
      approver: { issuer: f.sso.url, subject: "rm-3" },
      promotion: { id, environment: "production" },
    });
    expect(validatePredicate(rejection!.statement.predicate)).toBe(true);
    // Built from the stored vote: every answer carries the same statement.
    expect((await evidenceOf(id)).approvals[0]!.envelope.payload).toBe(rejection!.envelope.payload);
    expect(e.audit!.entries.filter((x) => x.subject === id).map((x) => x.type)).toContain("rejection");
    expect(verifySegment(e.audit!.entries, e.audit!.checkpoint, f.ferry.signingKey.publicKeyPem).ok).toBe(
      true,
    );
  });
});

describe("approval attestations of the same digest", () => {
  let writer: ArtifactWriter;
  const approvalLayers = async () => {
    const att = await writer.findManifest(legacyTag(digest, "att"));
    return (att?.manifest.kind === "image" ? att.manifest.value.layers : []).filter(
      (l) => l.annotations?.predicateType === APPROVAL_PREDICATE_TYPE,
    );
  };
  const summaryLayers = async () => {
    const att = await writer.findManifest(legacyTag(digest, "att"));
    return (att?.manifest.kind === "image" ? att.manifest.value.layers : []).filter(
      (l) => l.annotations?.predicateType === VSA_PREDICATE_TYPE,
    );
  };
  const approvalBundles = async () =>
    (await writer.listReferrers(digest)).filter(
      (r) => r.annotations?.["dev.sigstore.bundle.predicateType"] === APPROVAL_PREDICATE_TYPE,
    );
  const stepFor = () =>
    new EvidenceStep({
      signer: keySigner(f.ferry.signingKey),
      writerFor: () => writer,
      verifierId: AUD,
      builders: {},
      environments: new Set(["production"]),
      approvals: async (p, at) => {
        const votes = await new ApprovalStore(f.ferry.store).forPromotion(promotedId);
        // The same people approving a later promotion of the digest: their votes moved to it.
        return votes.map((v) => ({
          vote: { ...v, promotionId: p.id, decidedAt: Math.min(at, v.decidedAt + 60_000) },
          counts: true,
        }));
      },
      issuerUrls: new Map([["sso", f.sso.url]]),
    });
  const ctx = { lease: undefined as never, signal: new AbortController().signal, attempt: 2 };

  beforeAll(() => {
    const repo = f.prodRepo.slice(f.prodRepo.indexOf("/") + 1);
    const { config } = parseConfigText(
      `{ store: { sqlite: ./x.db }, keys: { signing: ./x.pem }, registries: [{ url: "${f.registry.url}" }] }`,
      path.join(f.work, "x.yaml"),
      {},
    );
    writer = createRegistryClient(config).repository({ registry: f.registry.host, repository: repo });
  });

  it("are found, not written again, when the step runs again", async () => {
    const record = (await new PromotionStore(f.ferry.store).get(promotedId))!;
    const before = { layers: await approvalLayers(), bundles: await approvalBundles() };
    expect(before.layers).toHaveLength(2);
    expect(before.bundles).toHaveLength(2);
    const step = new EvidenceStep({
      signer: keySigner(f.ferry.signingKey),
      writerFor: () => writer,
      verifierId: AUD,
      builders: {},
      environments: new Set(["production"]),
      approvals: (p) => approvalsOf(p.id),
      issuerUrls: new Map([["sso", f.sso.url]]),
    });
    const again = await step.run(record, record.steps.find((s) => s.name === "evidence")!, ctx);
    expect(again.status === "done" && again.data?.approvals).toEqual([
      expect.objectContaining({
        attached: [
          expect.objectContaining({ status: "existing" }),
          expect.objectContaining({ status: "existing" }),
        ],
      }),
      expect.objectContaining({
        attached: [
          expect.objectContaining({ status: "existing" }),
          expect.objectContaining({ status: "existing" }),
        ],
      }),
    ]);
    expect(await approvalLayers()).toEqual(before.layers);
    expect((await approvalBundles()).map((b) => b.digest).sort()).toEqual(
      before.bundles.map((b) => b.digest).sort(),
    );
  });

  it("of a later promotion replace the earlier promotion's, so repeated promotions do not pile up", async () => {
    const record = (await new PromotionStore(f.ferry.store).get(promotedId))!;
    const before = {
      layers: await approvalLayers(),
      bundles: await approvalBundles(),
      summaries: (await summaryLayers()).length,
    };
    expect(before.summaries).toBe(2);
    // The same digest promoted into production again later (a rollback to it), approved again.
    const later = {
      ...record,
      id: `${record.id}-again`,
      steps: record.steps.map((s) => ({
        ...s,
        ...(s.startedAt === undefined ? {} : { startedAt: s.startedAt + 120_000 }),
        ...(s.finishedAt === undefined ? {} : { finishedAt: s.finishedAt + 120_000 }),
      })),
    };
    const outcome = await stepFor().run(later, later.steps.find((s) => s.name === "evidence")!, ctx);
    expect(outcome.status).toBe("done");
    const after = { layers: await approvalLayers(), bundles: await approvalBundles() };
    expect(after.layers).toHaveLength(2);
    expect(after.layers.map((l) => l.digest)).not.toContain(before.layers[0]!.digest);
    expect(after.bundles).toHaveLength(2);
    expect(after.bundles.map((b) => b.digest)).not.toContain(before.bundles[0]!.digest);
    // The summary was replaced too (newer timeVerified): as many as before (the staging summary the
    // copy brought along, and production's), and cosign still verifies what is there.
    expect(await summaryLayers()).toHaveLength(before.summaries);
    const pub = path.join(f.work, "ferry.pub");
    writeFileSync(pub, f.ferry.signingKey.publicKeyPem);
    for (const newBundleFormat of [false, true]) {
      const res = await verifyAttestation(`${f.prodRepo}@${digest}`, pub, APPROVAL_PREDICATE_TYPE, {
        newBundleFormat,
      });
      expect(res.code, res.stderr).toBe(0);
      const ids = res.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(Buffer.from(JSON.parse(line).payload, "base64").toString()) as Statement)
        .filter((s) => s.predicateType === APPROVAL_PREDICATE_TYPE)
        .map((s) => (s.predicate.promotion as { id: string }).id);
      expect(ids).toEqual([later.id, later.id]);
    }
  });
});

/** The stored votes of promotion `id`, each counted (the gate passed on them). */
async function approvalsOf(id: string) {
  const votes = await new ApprovalStore(f.ferry.store).forPromotion(id);
  return votes.map((vote) => ({ vote, counts: true }));
}
