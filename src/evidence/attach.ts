/**
 * Attaching a verification summary (and a promotion's approval attestations) beside the ones Ferry
 * attached before. Each promotion yields a summary and its approvals, and a digest promoted again
 * into the same repository (a rollback, several apps sharing a staging repository) would pile them
 * up until verification's limits (`trust.limits.layers`, `candidates`) deny the digest. So a
 * summary replaces Ferry's own earlier, older summaries of the same digest for the same policy
 * (verifier and environment), and a promotion's approvals replace Ferry's approvals of the same
 * digest, app and environment given for an earlier promotion: in the `.att` tag, and in the
 * referrers fallback index. Nothing signed by anyone else, and nothing about another digest, app or
 * environment, is ever removed.
 */
import { verify as cryptoVerify, type KeyObject } from "node:crypto";
import { FerryError, isFerryError } from "../common/errors.ts";
import { legacyTag } from "../registry/cosign-tags.ts";
import { digestTag, sha256 } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import type { ArtifactWriter } from "../registry/ports.ts";
import { addToFallbackIndex } from "../registry/referrers.ts";
import type { Blob } from "../signing/attachments.ts";
import { COSIGN, cosignConfig, type DsseEnvelope, pae } from "../signing/formats.ts";
import { type Published, type PublishStatus, pushBlobs } from "../signing/publish.ts";
import { APPROVAL_PREDICATE_TYPE } from "./approval.ts";
import { VSA_PREDICATE_TYPE } from "./vsa.ts";

/** What a stored envelope is to an attestation being attached. */
export type SummaryMatch = "same" | "superseded" | "other";

/** A statement of Ferry's as stored: its predicate type, subjects and predicate, unchecked. */
export interface StoredStatement {
  predicateType?: unknown;
  subject?: { digest?: Record<string, unknown> }[];
  predicate?: Record<string, unknown>;
}

/** What tells one of Ferry's own attestations apart from what is stored beside it. */
export interface OwnAttestation {
  publicKey: KeyObject;
  /** The statement being attached (the DSSE payload). */
  payload: Uint8Array;
  predicateType: string;
  /** Whether a stored statement of Ferry's, of the same predicate type, is one this replaces. */
  supersedes(statement: StoredStatement): boolean;
}

/** What tells Ferry's own summaries apart: its key, the statement attached now, and what it is about. */
export interface SummaryIdentity {
  publicKey: KeyObject;
  /** The statement being attached (the DSSE payload). */
  payload: Uint8Array;
  digest: string;
  /** The summary's `policy.uri`: verifier and environment. */
  policyUri: string;
  /** Its `timeVerified`, epoch ms: only summaries verified no later are superseded. */
  timeVerified: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const CAS_ATTEMPTS = 5;

function verifies(key: KeyObject, data: Uint8Array, signatureB64: string): boolean {
  try {
    return cryptoVerify("sha256", data, { key, dsaEncoding: "der" }, Buffer.from(signatureB64, "base64"));
  } catch {
    return false;
  }
}

/** Whether a stored statement is about `digest` (one of its subjects). */
export function isAbout(statement: StoredStatement, digest: string): boolean {
  const hex = digest.replace(/^sha256:/, "");
  return Array.isArray(statement.subject) && statement.subject.some((s) => s?.digest?.sha256 === hex);
}

/** The summary as an {@link OwnAttestation}: it replaces Ferry's older summaries of the digest for the same policy. */
export function summaryAttestation(id: SummaryIdentity): OwnAttestation {
  return {
    publicKey: id.publicKey,
    payload: id.payload,
    predicateType: VSA_PREDICATE_TYPE,
    supersedes: (statement) => {
      const p = statement.predicate;
      const at = typeof p?.timeVerified === "string" ? Date.parse(p.timeVerified) : NaN;
      const policy = p?.policy as { uri?: unknown } | undefined;
      return isAbout(statement, id.digest) && policy?.uri === id.policyUri && at <= id.timeVerified;
    },
  };
}

/**
 * Classifies stored bytes (an `.att` layer's envelope, or a Sigstore bundle holding one when
 * `bundle`): `same` when it carries this very statement signed with Ferry's key; `superseded` when it
 * is one of Ferry's own earlier statements that `own` replaces; `other` for anything else,
 * including every envelope no signature of Ferry's key verifies.
 */
export function classify(
  bytes: Uint8Array,
  bundle: boolean,
  own: OwnAttestation | SummaryIdentity,
): SummaryMatch {
  const attestation = "predicateType" in own ? own : summaryAttestation(own);
  let envelope: Partial<DsseEnvelope> | undefined;
  try {
    const parsed = JSON.parse(decoder.decode(bytes)) as { dsseEnvelope?: Partial<DsseEnvelope> };
    envelope = bundle ? parsed.dsseEnvelope : (parsed as Partial<DsseEnvelope>);
  } catch {
    return "other";
  }
  if (typeof envelope?.payload !== "string" || !Array.isArray(envelope.signatures)) return "other";
  const payload = Buffer.from(envelope.payload, "base64");
  const signed = pae(envelope.payloadType ?? COSIGN.inTotoPayloadType, payload);
  const ours = envelope.signatures.some(
    (s) => typeof s?.sig === "string" && verifies(attestation.publicKey, signed, s.sig),
  );
  if (!ours) return "other";
  if (Buffer.compare(payload, Buffer.from(attestation.payload)) === 0) return "same";
  let statement: StoredStatement;
  try {
    statement = JSON.parse(payload.toString("utf8")) as StoredStatement;
  } catch {
    return "other";
  }
  if (statement === null || typeof statement !== "object") return "other";
  return statement.predicateType === attestation.predicateType && attestation.supersedes(statement)
    ? "superseded"
    : "other";
}

/** What tells a promotion's approval attestations apart (see {@link approvalAttestation}). */
export interface ApprovalsIdentity {
  publicKey: KeyObject;
  digest: string;
  promotion: { id: string; app: string; environment: string };
  /** When the promotion's gates passed (epoch ms): only approvals given no later are superseded. */
  gatesPassedAt: number;
}

/**
 * One approval attestation as an {@link OwnAttestation}: it replaces Ferry's approvals of the same
 * digest, app and environment that were given for another, earlier promotion (given before this
 * promotion's gates passed), so promoting a digest again keeps one promotion's approvals on it.
 */
export function approvalAttestation(id: ApprovalsIdentity, payload: Uint8Array): OwnAttestation {
  return {
    publicKey: id.publicKey,
    payload,
    predicateType: APPROVAL_PREDICATE_TYPE,
    supersedes: (statement) => {
      const p = statement.predicate;
      const promotion = p?.promotion as { id?: unknown; app?: unknown; environment?: unknown } | undefined;
      const at = typeof p?.time === "string" ? Date.parse(p.time) : NaN;
      return (
        isAbout(statement, id.digest) &&
        promotion?.app === id.promotion.app &&
        promotion.environment === id.promotion.environment &&
        promotion.id !== id.promotion.id &&
        at <= id.gatesPassedAt
      );
    },
  };
}

/** The `.att` write, and for each item whether it was added now or found there. */
export interface LegacyPublished extends Published {
  statuses: PublishStatus[];
}

/** One layer to add to the `.att` image, and what tells it apart. */
export interface LegacyItem {
  layer: Blob;
  own: OwnAttestation;
}

/**
 * Adds `layer` to cosign's `.att` image of `digest`, dropping Ferry's superseded summaries from it
 * and keeping every other layer. Idempotent: when the same summary is there, nothing is written.
 */
export function replaceLegacySummary(
  writer: ArtifactWriter,
  layer: Blob,
  id: SummaryIdentity,
): Promise<Published> {
  return replaceLegacyAttestations(writer, id.digest, [{ layer, own: summaryAttestation(id) }]);
}

/**
 * Adds each item's layer to cosign's `.att` image of `digest` in one write, dropping the stored
 * statements of Ferry's that an item supersedes and keeping every other layer (other signers, other
 * environments). Idempotent: an item whose very statement is there already is not added again, and
 * when all are there and nothing is superseded, nothing is written (`existing`). Compare-and-swap on
 * the tag, and read again after the write (distribution 2.8 ignores If-Match).
 */
export async function replaceLegacyAttestations(
  writer: ArtifactWriter,
  digest: string,
  items: readonly LegacyItem[],
): Promise<LegacyPublished> {
  const tag = legacyTag(digest, "att");
  const types = new Set(items.map((i) => i.own.predicateType));
  for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
    const existing = await writer.findManifest(tag);
    if (existing !== undefined && existing.manifest.kind !== "image") {
      throw new FerryError(
        "conflict",
        `${writer.location}:${tag} is not a cosign attestation image; refusing to overwrite it`,
      );
    }
    const kept: Descriptor[] = [];
    const present = new Set<LegacyItem>();
    let dropped = 0;
    for (const l of existing?.manifest.kind === "image" ? existing.manifest.value.layers : []) {
      const type = l.annotations?.[COSIGN.predicateTypeAnnotation];
      if (l.mediaType === COSIGN.dsseEnvelope && type !== undefined && types.has(type)) {
        const bytes = await writer.fetchBlob(l);
        const mine = items.filter((i) => i.own.predicateType === type);
        const matches = mine.map((i) => classify(bytes, false, i.own));
        const same = mine.find((_, n) => matches[n] === "same");
        if (same !== undefined) present.add(same);
        else if (matches.includes("superseded")) {
          dropped++;
          continue;
        }
      }
      kept.push(l);
    }
    const missing = items.filter((i) => !present.has(i));
    const statuses = items.map((i): PublishStatus => (present.has(i) ? "existing" : "created"));
    if (missing.length === 0 && dropped === 0) return { status: "existing", location: tag, statuses };
    const layers = [...kept, ...missing.map((i) => i.layer.descriptor)];
    let configBytes = cosignConfig(layers.map((l) => l.digest));
    let manifest: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.ociManifest };
    let mediaType: string = MediaType.ociManifest;
    if (existing?.manifest.kind === "image") {
      // Keep the image as cosign wrote it; its config lists the layers (diff_ids), so list the kept ones.
      let config: Record<string, unknown> & { rootfs?: Record<string, unknown> };
      try {
        config = JSON.parse(
          decoder.decode(await writer.fetchBlob(existing.manifest.value.config)),
        ) as typeof config;
      } catch (err) {
        throw new FerryError(
          "conflict",
          `${writer.location}:${tag} has a config that is not JSON; refusing to rewrite it`,
          {
            cause: err,
          },
        );
      }
      configBytes = encoder.encode(
        JSON.stringify({
          ...config,
          rootfs: { ...config.rootfs, type: "layers", diff_ids: layers.map((l) => l.digest) },
        }),
      );
      manifest = JSON.parse(decoder.decode(existing.bytes)) as Record<string, unknown>;
      mediaType = existing.manifest.mediaType;
    }
    const configDescriptor: Descriptor = {
      mediaType: "application/vnd.oci.image.config.v1+json",
      ...(existing?.manifest.kind === "image" ? existing.manifest.value.config : {}),
      digest: sha256(configBytes),
      size: configBytes.byteLength,
    };
    const bytes = encoder.encode(JSON.stringify({ ...manifest, config: configDescriptor, layers }));
    await pushBlobs(writer, [
      { descriptor: configDescriptor, bytes: configBytes },
      ...missing.map((i) => i.layer),
    ]);
    try {
      await writer.putManifest(bytes, mediaType, { tag, ifMatch: existing?.descriptor.digest ?? null });
    } catch (err) {
      if (isFerryError(err, "conflict") && attempt < CAS_ATTEMPTS) continue;
      throw err;
    }
    const after = await writer.findManifest(tag);
    if (
      after?.manifest.kind === "image" &&
      missing.every((i) =>
        (after.manifest.value as { layers: Descriptor[] }).layers.some(
          (l) => l.digest === i.layer.descriptor.digest,
        ),
      )
    )
      return { status: "created", location: tag, statuses };
  }
  throw new FerryError(
    "conflict",
    `${writer.location}:${tag} kept changing under concurrent writers; try again`,
  );
}

/**
 * Drops Ferry's superseded summaries from the referrers fallback index of `id.digest` (registries
 * without the referrers API), keeping `keep` and every other entry. A registry with the referrers
 * API has no such index and keeps every referrer: removing one there needs a manifest delete.
 */
export function pruneFallbackSummaries(
  writer: ArtifactWriter,
  keep: string,
  id: SummaryIdentity,
): Promise<void> {
  return pruneFallbackIndex(writer, id.digest, [keep], [summaryAttestation(id)]);
}

/**
 * Drops from the referrers fallback index of `digest` the bundles of Ferry's that one of `owns`
 * supersedes, keeping each of `keep` (what was just attached) and every other entry.
 */
export async function pruneFallbackIndex(
  writer: ArtifactWriter,
  digest: string,
  keep: readonly string[],
  owns: readonly OwnAttestation[],
): Promise<void> {
  const tag = digestTag(digest);
  const types = new Set(owns.map((o) => o.predicateType));
  for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
    const index = await writer.findManifest(tag);
    if (index?.manifest.kind !== "index") return;
    const entries = index.manifest.value.manifests;
    const kept = keep
      .map((k) => entries.find((d) => d.digest === k))
      .filter((d): d is Descriptor => d !== undefined);
    if (kept.length === 0) return;
    const drop = new Set<string>();
    for (const entry of entries) {
      const type = entry.annotations?.["dev.sigstore.bundle.predicateType"];
      if (keep.includes(entry.digest) || entry.artifactType !== COSIGN.bundleV03 || type === undefined)
        continue;
      if (!types.has(type)) continue;
      const referrer = await writer.findManifest(entry.digest);
      const layer =
        referrer?.manifest.kind === "image"
          ? referrer.manifest.value.layers.find((l) => l.mediaType === COSIGN.bundleV03)
          : undefined;
      if (layer === undefined) continue;
      const bytes = await writer.fetchBlob(layer);
      if (owns.some((o) => o.predicateType === type && classify(bytes, true, o) === "superseded"))
        drop.add(entry.digest);
    }
    if (drop.size === 0) return;
    const manifests = entries.filter((d) => !drop.has(d.digest));
    const bytes = encoder.encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }),
    );
    try {
      await writer.putManifest(bytes, MediaType.ociIndex, { tag, ifMatch: index.descriptor.digest });
    } catch (err) {
      if (isFerryError(err, "conflict") && attempt < CAS_ATTEMPTS) continue;
      throw err;
    }
    const after = await writer.findManifest(tag);
    const listed = after?.manifest.kind === "index" ? after.manifest.value.manifests : [];
    // A concurrent writer's index replaced ours without what was just attached: list it again.
    for (const d of kept)
      if (!listed.some((l) => l.digest === d.digest)) await addToFallbackIndex(writer, digest, d);
    return;
  }
  // Pruning is housekeeping: the attestations are attached; a busy index is pruned by the next one.
}
