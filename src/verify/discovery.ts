import { createHash } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import { isFerryError } from "../common/errors.ts";
import { digestTag } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import type { Candidate } from "./candidate.ts";
import { legacyIntotoEntry } from "./intoto-v001.ts";
import { dsseLayerToBundle, simpleSigningToBundle } from "./legacy.ts";
import { Annotation, DSSE_ENVELOPE, isBundleMediaType, SIMPLE_SIGNING } from "./media.ts";
import type { ArtifactFetcher, ManifestObject } from "./ports.ts";

/** What discovery found for one digest. */
export interface Discovery {
  /** The subject manifest (or index) itself. */
  subject: ManifestObject;
  candidates: Candidate[];
}

/** Options for {@link discover}. */
export interface DiscoverOptions {
  /** The largest signature, attestation or bundle blob read into memory. */
  maxBlobBytes: number;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function unreadable(candidate: Omit<Candidate, "readable">, err: unknown): Candidate {
  const mismatch = isFerryError(err, "digest_mismatch");
  return {
    ...candidate,
    readable: false,
    reason: mismatch ? "content_digest_mismatch" : "unreadable",
    message: mismatch
      ? "its content does not hash to its digest (altered in storage or in transit)"
      : `it could not be read: ${err instanceof Error ? err.message : String(err)}`,
  } as Candidate;
}

async function legacySignatures(fetcher: ArtifactFetcher, tag: string, opts: DiscoverOptions) {
  const sig = await fetcher.legacyTag(`${tag}.sig`);
  if (sig?.manifest.kind !== "image") return [];
  return Promise.all(
    sig.manifest.value.layers
      .filter((layer) => layer.mediaType === SIMPLE_SIGNING)
      .map(async (layer, i): Promise<Candidate> => {
        const base = {
          format: "cosign-signature" as const,
          source: `tag ${tag}.sig layer ${i}`,
          digest: layer.digest,
        };
        try {
          const payload = Buffer.from(await fetcher.blob(layer, opts.maxBlobBytes));
          return {
            ...base,
            readable: true,
            bundle: simpleSigningToBundle(layer, sha256Hex(payload)),
            artifact: payload,
          };
        } catch (err) {
          return unreadable(base, err);
        }
      }),
  );
}

async function legacyAttestations(fetcher: ArtifactFetcher, tag: string, opts: DiscoverOptions) {
  const att = await fetcher.legacyTag(`${tag}.att`);
  if (att?.manifest.kind !== "image") return [];
  return Promise.all(
    att.manifest.value.layers
      .filter((layer) => layer.mediaType === DSSE_ENVELOPE)
      .map(async (layer, i): Promise<Candidate> => {
        const base = {
          format: "cosign-attestation" as const,
          source: `tag ${tag}.att layer ${i}`,
          digest: layer.digest,
        };
        try {
          const bytes = await fetcher.blob(layer, opts.maxBlobBytes);
          const claimed = layer.annotations?.[Annotation.predicateType];
          const intoto = legacyIntotoEntry(layer, bytes);
          return {
            ...base,
            readable: true,
            bundle: dsseLayerToBundle(layer, bytes),
            ...(claimed ? { claimedPredicateType: claimed } : {}),
            ...(intoto ? { legacyIntoto: intoto } : {}),
          };
        } catch (err) {
          return unreadable(base, err);
        }
      }),
  );
}

/**
 * A referrer is judged by its own manifest, never by the `artifactType` of the list entry: the tag
 * fallback index that cosign writes labels every entry `application/vnd.oci.empty.v1+json`.
 */
async function referrerCandidates(
  fetcher: ArtifactFetcher,
  descriptor: Descriptor,
  subject: ManifestObject,
  opts: DiscoverOptions,
): Promise<Candidate[]> {
  const source = `referrer ${descriptor.digest}`;
  let referrer: ManifestObject;
  try {
    referrer = await fetcher.manifest(descriptor.digest);
  } catch (err) {
    return [unreadable({ format: "sigstore-bundle", source, digest: descriptor.digest }, err)];
  }
  if (referrer.manifest.kind !== "image") return [];
  const value = referrer.manifest.value;
  // A referrers list is an index anyone can write to: only a manifest that names this subject counts.
  if (value.subject?.digest !== subject.digest) return [];
  const predicateHint = value.annotations?.["dev.sigstore.bundle.predicateType"];
  const layers = value.layers.filter((l) => isBundleMediaType(l.mediaType));
  return Promise.all(
    layers.map(async (layer): Promise<Candidate> => {
      const base = { format: "sigstore-bundle" as const, source, digest: layer.digest };
      try {
        const bytes = await fetcher.blob(layer, opts.maxBlobBytes);
        const bundle = bundleFromJSON(JSON.parse(Buffer.from(bytes).toString("utf8")));
        return {
          ...base,
          readable: true,
          bundle,
          // A message-signature bundle on an image signs the subject manifest's bytes.
          ...(bundle.content.$case === "messageSignature" ? { artifact: Buffer.from(subject.bytes) } : {}),
          ...(predicateHint ? { claimedPredicateType: predicateHint } : {}),
        };
      } catch (err) {
        return unreadable(base, err);
      }
    }),
  );
}

/**
 * Finds every signature and attestation of `digest` in one pass: cosign's legacy `.sig` and `.att`
 * tags and Sigstore bundles attached as referrers. The independent lookups run in parallel; the
 * fetcher is expected to serve each immutable object once (see `CachingFetcher`).
 */
export async function discover(
  fetcher: ArtifactFetcher,
  digest: string,
  opts: DiscoverOptions,
): Promise<Discovery> {
  const tag = digestTag(digest);
  const [subject, signatures, attestations, referrers] = await Promise.all([
    fetcher.manifest(digest),
    legacySignatures(fetcher, tag, opts),
    legacyAttestations(fetcher, tag, opts),
    fetcher.referrers(digest),
  ]);
  const unique = [...new Map(referrers.map((d) => [d.digest, d])).values()];
  const bundles = await Promise.all(unique.map((d) => referrerCandidates(fetcher, d, subject, opts)));
  return { subject, candidates: [...signatures, ...attestations, ...bundles.flat()] };
}
