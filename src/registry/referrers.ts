import { type Clock, systemClock } from "../common/clock.ts";
import { FerryError, isFerryError } from "../common/errors.ts";
import { KeyedMutex } from "../common/locks.ts";
import { digestTag } from "./digest.ts";
import { type Descriptor, parseManifest, referrerDescriptor } from "./manifest.ts";
import { MediaType } from "./media-types.ts";
import type { ArtifactReader, ArtifactWriter, ListReferrersOptions, ReadOptions } from "./ports.ts";

/**
 * Keeps only the referrers of `artifactType`. An entry whose type is missing or the empty type is
 * looked up in its manifest: cosign writes fallback index entries with
 * `application/vnd.oci.empty.v1+json` whatever the artifact is.
 */
export async function filterByArtifactType(
  reader: ArtifactReader,
  descriptors: Descriptor[],
  artifactType: string | undefined,
  options: ReadOptions = {},
): Promise<Descriptor[]> {
  if (artifactType === undefined) return descriptors;
  const resolved = await Promise.all(
    descriptors.map(async (d) => {
      if (d.artifactType !== undefined && d.artifactType !== MediaType.ociEmpty) return d;
      const fetched = await reader.fetchManifest(d.digest, options);
      return referrerDescriptor(fetched.manifest, d.digest, d.size);
    }),
  );
  return resolved.filter((d) => d.artifactType === artifactType);
}

/** The referrers of `digest` by the referrers tag schema: the index tagged `sha256-<hex>`. */
export async function fallbackReferrers(
  reader: ArtifactReader,
  digest: string,
  options: ListReferrersOptions = {},
): Promise<Descriptor[]> {
  const found = await reader.findManifest(digestTag(digest), options);
  // Something else under that tag (not an index) is not a referrers list: there are none.
  if (found === undefined || found.manifest.kind !== "index") return [];
  return filterByArtifactType(reader, found.manifest.value.manifests, options.artifactType, options);
}

/** Options for writing referrers. */
export interface ReferrerWriteOptions {
  /**
   * Serialises fallback index updates per repository and subject within this process. Share one
   * across writers (the default is one per module); other processes are covered by the re-check loop.
   */
  lock?: KeyedMutex;
  /** How many read-modify-write rounds before giving up with `conflict` (default 8). */
  attempts?: number;
  /** Pause before the re-read that checks our entry survived (default 10–30 ms, jittered). */
  settleMs?: () => number;
  /** Times those pauses (default: the system clock). */
  clock?: Clock;
  /** Stops the update: passed to every read and write of the index. */
  signal?: AbortSignal;
}

const sharedLock = new KeyedMutex();

/**
 * Pushes a manifest that has a `subject` (a signature, attestation or SBOM) and makes it findable:
 * a registry with the referrers API indexes it itself (it answers `OCI-Subject`); otherwise the
 * subject's fallback index is updated with {@link addToFallbackIndex}. Returns the manifest's digest.
 */
export async function putReferrer(
  writer: ArtifactWriter,
  bytes: Uint8Array,
  mediaType: string,
  options: ReferrerWriteOptions = {},
): Promise<string> {
  const manifest = parseManifest(bytes, mediaType, `referrer for ${writer.location}`);
  const subject = manifest.value.subject;
  if (subject === undefined) {
    throw new FerryError("bad_request", `a referrer pushed to ${writer.location} must have a subject`);
  }
  const put = await writer.putManifest(bytes, mediaType);
  if (!put.subjectIndexed) {
    await addToFallbackIndex(
      writer,
      subject.digest,
      referrerDescriptor(manifest, put.digest, bytes.byteLength),
      options,
    );
  }
  return put.digest;
}

/**
 * Adds `entry` to the referrers fallback index of `subjectDigest`, safely beside concurrent writers:
 * read the index, add the entry, write it conditionally on the digest read (412 → start again), then
 * re-read after a short pause and start again if a concurrent writer's update overwrote ours.
 * Registries that ignore conditional requests (distribution 2.8 does) are covered by that re-check.
 */
export async function addToFallbackIndex(
  writer: ArtifactWriter,
  subjectDigest: string,
  entry: Descriptor,
  options: ReferrerWriteOptions = {},
): Promise<void> {
  const tag = digestTag(subjectDigest);
  const attempts = options.attempts ?? 8;
  const settle = options.settleMs ?? (() => 10 + Math.floor(Math.random() * 20));
  const clock = options.clock ?? systemClock;
  const io = options.signal === undefined ? {} : { signal: options.signal };
  await (options.lock ?? sharedLock).run(`${writer.location} ${tag}`, async () => {
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const current = await writer.findManifest(tag, io);
      const entries = current?.manifest.kind === "index" ? current.manifest.value.manifests : [];
      if (entries.some((d) => d.digest === entry.digest)) return;
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [...entries.filter((d) => d.digest !== entry.digest), entry],
      };
      try {
        await writer.putManifest(new TextEncoder().encode(JSON.stringify(index)), MediaType.ociIndex, {
          ...io,
          tag,
          ifMatch: current?.descriptor.digest ?? null,
        });
      } catch (err) {
        if (!isFerryError(err, "conflict")) throw err;
        await clock.sleep(settle());
        continue;
      }
      await clock.sleep(settle());
      const after = await writer.findManifest(tag, io);
      if (
        after?.manifest.kind === "index" &&
        after.manifest.value.manifests.some((d) => d.digest === entry.digest)
      ) {
        return;
      }
    }
    throw new FerryError(
      "conflict",
      `the referrers index ${tag} in ${writer.location} kept changing under concurrent writers; try again`,
    );
  });
}
