import { FerryError, isFerryError } from "../common/errors.ts";
import { legacyTag, mergeLegacyAttachment } from "../registry/cosign-tags.ts";
import { sha256 } from "../registry/digest.ts";
import { type Descriptor, parseManifest } from "../registry/manifest.ts";
import type { ArtifactWriter, FetchedManifest } from "../registry/ports.ts";
import { putReferrer } from "../registry/referrers.ts";
import { attachmentImage, type Blob, type ManifestToPush } from "./attachments.ts";

/** Whether a signature or attestation was written now or found already there. */
export type PublishStatus = "created" | "existing";

/** Where a signature or attestation was stored, and whether this request wrote it. */
export interface Published {
  status: PublishStatus;
  /** The tag (`sha256-….sig`) or the referrer manifest's digest. */
  location: string;
}

/** Decides whether an existing layer (or bundle) is already the one we would write. */
export type SameAs = (descriptor: Descriptor, bytes: () => Promise<Uint8Array>) => Promise<boolean>;

const CAS_ATTEMPTS = 5;

/** Uploads each blob the repository does not hold yet, at once. */
export async function pushBlobs(writer: ArtifactWriter, blobs: readonly Blob[]): Promise<void> {
  await Promise.all(
    blobs.map(async (b) => {
      if (!(await writer.hasBlob(b.descriptor))) await writer.putBlob(b.descriptor, b.bytes);
    }),
  );
}

function asFetched(image: ManifestToPush, where: string): FetchedManifest {
  return {
    descriptor: { mediaType: image.mediaType, digest: image.digest, size: image.bytes.byteLength },
    bytes: image.bytes,
    manifest: parseManifest(image.bytes, image.mediaType, where),
  };
}

/**
 * Appends one layer to cosign's `.sig` or `.att` image of `digest`, keeping every existing layer
 * (other signers' signatures survive). Idempotent: when a layer that `sameAs` recognises is already
 * there, nothing is written. The tag is updated compare-and-swap on the digest read, and read again
 * on a conflict, so concurrent signers do not drop each other's layers.
 */
export async function appendLegacyLayer(
  writer: ArtifactWriter,
  digest: string,
  kind: "sig" | "att",
  layer: Blob,
  sameAs: SameAs,
): Promise<Published> {
  const tag = legacyTag(digest, kind);
  for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
    const existing = await writer.findManifest(tag);
    if (existing !== undefined && existing.manifest.kind === "image") {
      for (const l of existing.manifest.value.layers) {
        if (l.mediaType !== layer.descriptor.mediaType) continue;
        if (await sameAs(l, () => writer.fetchBlob(l))) return { status: "existing", location: tag };
      }
    }
    const incoming = attachmentImage([layer]);
    let image: ManifestToPush = incoming;
    if (existing !== undefined) {
      const config =
        existing.manifest.kind === "image"
          ? await writer.fetchBlob(existing.manifest.value.config)
          : undefined;
      const merged = config && mergeLegacyAttachment(existing, config, asFetched(incoming, tag));
      if (!merged) {
        throw new FerryError(
          "conflict",
          `${writer.location}:${tag} exists but is not a cosign ${kind === "sig" ? "signature" : "attestation"} image; refusing to overwrite it`,
        );
      }
      image = {
        mediaType: merged.mediaType,
        bytes: merged.manifest,
        digest: sha256(merged.manifest),
        blobs: [{ descriptor: merged.config.descriptor, bytes: merged.config.bytes }, layer],
      };
    }
    await pushBlobs(writer, image.blobs);
    try {
      await writer.putManifest(image.bytes, image.mediaType, {
        tag,
        ifMatch: existing?.descriptor.digest ?? null,
      });
    } catch (err) {
      if (isFerryError(err, "conflict") && attempt < CAS_ATTEMPTS) continue;
      throw err;
    }
    // Registries that ignore If-Match (distribution 2.8) get a re-read: if a concurrent writer's
    // update replaced ours, go round again (our layer is then missing and is added back).
    const after = await writer.findManifest(tag);
    if (
      after?.manifest.kind === "image" &&
      after.manifest.value.layers.some((l) => l.digest === layer.descriptor.digest)
    ) {
      return { status: "created", location: tag };
    }
  }
  throw new FerryError(
    "conflict",
    `${writer.location}:${tag} kept changing under concurrent writers; try again`,
  );
}

/**
 * Attaches a Sigstore bundle as an OCI referrer of the subject (referrers API, or the fallback tag
 * index). Idempotent: an existing referrer whose bundle `sameAs` recognises is reused.
 */
export async function attachBundle(
  writer: ArtifactWriter,
  subjectDigest: string,
  referrer: ManifestToPush,
  predicateType: string,
  sameAs: SameAs,
): Promise<Published> {
  const bundleType = referrer.blobs[1]!.descriptor.mediaType;
  const listed = await writer.listReferrers(subjectDigest, { artifactType: bundleType });
  for (const d of listed) {
    if (
      d.annotations?.["dev.sigstore.bundle.predicateType"] !== undefined &&
      d.annotations["dev.sigstore.bundle.predicateType"] !== predicateType
    ) {
      continue;
    }
    const fetched = await writer.findManifest(d.digest);
    if (fetched?.manifest.kind !== "image") continue;
    const layer = fetched.manifest.value.layers.find((l) => l.mediaType === bundleType);
    if (layer && (await sameAs(layer, () => writer.fetchBlob(layer)))) {
      return { status: "existing", location: d.digest };
    }
  }
  await pushBlobs(writer, referrer.blobs);
  const digest = await putReferrer(writer, referrer.bytes, referrer.mediaType);
  return { status: "created", location: digest };
}
