import { createHash } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import { isFerryError } from "../common/errors.ts";
import { digestTag } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import type { Candidate } from "./candidate.ts";
import { legacyIntotoEntry } from "./intoto-v001.ts";
import { dsseLayerToBundle, simpleSigningToBundle } from "./legacy.ts";
import type { ReadBudget } from "./limits.ts";
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
  /** The verification's caps and byte count, shared by the subject and its platform manifests. */
  budget: ReadBudget;
  /** The verification's deadline: passed to every read, and checked between steps. */
  signal?: AbortSignal | undefined;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * A candidate that could not be read fails closed, as a candidate. A read cut short by the
 * deadline is not a fact about the candidate: it is rethrown, and never reaches a decision.
 */
function unreadable(
  candidate: Omit<Candidate, "readable">,
  err: unknown,
  signal: AbortSignal | undefined,
): Candidate {
  if (signal?.aborted) throw err;
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

/**
 * The layers of `media` a legacy tag's manifest lists, after the caps: refused before any is read
 * when there are more than `limits.layers`, or when their declared sizes pass the byte budget.
 */
function legacyLayers(found: ManifestObject | undefined, media: string, what: string, opts: DiscoverOptions) {
  if (found?.manifest.kind !== "image") return [];
  const layers = found.manifest.value.layers.filter((layer) => layer.mediaType === media);
  admitLayers(layers, what, opts);
  return layers;
}

function admitLayers(layers: Descriptor[], what: string, opts: DiscoverOptions): void {
  opts.budget.count(layers.length, opts.budget.limits.layers, "too_many_layers", `layers of ${what}`);
  opts.budget.reserve(
    layers.reduce((sum, l) => sum + l.size, 0),
    what,
  );
}

function legacySignatures(
  fetcher: ArtifactFetcher,
  tag: string,
  sig: ManifestObject | undefined,
  opts: DiscoverOptions,
) {
  const layers = legacyLayers(sig, SIMPLE_SIGNING, `${tag}.sig`, opts);
  return Promise.all(
    layers.map(async (layer, i): Promise<Candidate> => {
      const base = {
        format: "cosign-signature" as const,
        source: `tag ${tag}.sig layer ${i}`,
        digest: layer.digest,
        manifestDigest: sig!.digest,
      };
      try {
        const payload = Buffer.from(await fetcher.blob(layer, opts.maxBlobBytes, { signal: opts.signal }));
        return {
          ...base,
          readable: true,
          bundle: simpleSigningToBundle(layer, sha256Hex(payload)),
          artifact: payload,
        };
      } catch (err) {
        return unreadable(base, err, opts.signal);
      }
    }),
  );
}

function legacyAttestations(
  fetcher: ArtifactFetcher,
  tag: string,
  att: ManifestObject | undefined,
  opts: DiscoverOptions,
) {
  const layers = legacyLayers(att, DSSE_ENVELOPE, `${tag}.att`, opts);
  return Promise.all(
    layers.map(async (layer, i): Promise<Candidate> => {
      const base = {
        format: "cosign-attestation" as const,
        source: `tag ${tag}.att layer ${i}`,
        digest: layer.digest,
        manifestDigest: att!.digest,
      };
      try {
        const bytes = await fetcher.blob(layer, opts.maxBlobBytes, { signal: opts.signal });
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
        return unreadable(base, err, opts.signal);
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
    referrer = await fetcher.manifest(descriptor.digest, { signal: opts.signal });
  } catch (err) {
    const base = { format: "sigstore-bundle" as const, source, digest: descriptor.digest };
    return [unreadable({ ...base, manifestDigest: descriptor.digest }, err, opts.signal)];
  }
  if (referrer.manifest.kind !== "image") return [];
  const value = referrer.manifest.value;
  // A referrers list is an index anyone can write to: only a manifest that names this subject counts.
  if (value.subject?.digest !== subject.digest) return [];
  const predicateHint = value.annotations?.["dev.sigstore.bundle.predicateType"];
  const layers = value.layers.filter((l) => isBundleMediaType(l.mediaType));
  admitLayers(layers, source, opts);
  return Promise.all(
    layers.map(async (layer): Promise<Candidate> => {
      const base = {
        format: "sigstore-bundle" as const,
        source,
        digest: layer.digest,
        manifestDigest: referrer.digest,
      };
      try {
        const bytes = await fetcher.blob(layer, opts.maxBlobBytes, { signal: opts.signal });
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
        return unreadable(base, err, opts.signal);
      }
    }),
  );
}

/**
 * Finds every signature and attestation of `digest`: cosign's legacy `.sig` and `.att` tags and
 * Sigstore bundles attached as referrers. First the lists, in parallel (the subject, both tags, the
 * referrers); then, once the caps have admitted what they name (`limits.ts`), every layer and
 * referrer manifest, in parallel. The fetcher is expected to serve each immutable object once (see
 * `CachingFetcher`). Throws {@link LimitExceeded} before reading anything over a cap.
 */
export async function discover(
  fetcher: ArtifactFetcher,
  digest: string,
  opts: DiscoverOptions,
): Promise<Discovery> {
  const tag = digestTag(digest);
  const read = { signal: opts.signal };
  const [subject, sig, att, referrers] = await Promise.all([
    fetcher.manifest(digest, read),
    fetcher.legacyTag(`${tag}.sig`, read),
    fetcher.legacyTag(`${tag}.att`, read),
    fetcher.referrers(digest, read),
  ]);
  opts.signal?.throwIfAborted();
  const unique = [...new Map(referrers.map((d) => [d.digest, d])).values()];
  const manifests = (sig ? 1 : 0) + (att ? 1 : 0) + unique.length;
  opts.budget.count(
    manifests,
    opts.budget.limits.candidates,
    "too_many_candidates",
    `signature and attestation manifests of ${digest}`,
  );
  const [signatures, attestations, bundles] = await Promise.all([
    legacySignatures(fetcher, tag, sig, opts),
    legacyAttestations(fetcher, tag, att, opts),
    Promise.all(unique.map((d) => referrerCandidates(fetcher, d, subject, opts))),
  ]);
  opts.signal?.throwIfAborted();
  return { subject, candidates: [...signatures, ...attestations, ...bundles.flat()] };
}
