import { FerryError, isFerryError } from "../common/errors.ts";
import { LEGACY_KINDS, type LegacyKind, legacyTag, mergeLegacyAttachment } from "./cosign-tags.ts";
import { assertDigest } from "./digest.ts";
import { Semaphore } from "./locks.ts";
import { type Descriptor, referrerDescriptor } from "./manifest.ts";
import type {
  ArtifactReader,
  ArtifactWriter,
  FetchedManifest,
  PutManifestOptions,
  PutManifestResult,
} from "./ports.ts";
import { addToFallbackIndex, type ReferrerWriteOptions } from "./referrers.ts";
import { backoffDelay, DEFAULT_RETRY, isConnectionError, type RetryPolicy, sleep } from "./retry.ts";

/** Progress of a copy, reported as it happens. */
export type CopyEvent =
  | { type: "manifest"; digest: string; mediaType: string; action: "pushed" | "present" }
  | { type: "blob"; digest: string; size: number; action: "mounted" | "present" | "uploaded" }
  | { type: "bytes"; digest: string; transferred: number; size: number }
  | { type: "attachment"; kind: LegacyKind | "referrer"; subject: string; digest: string };

/** Options of {@link copyArtifact}. */
export interface CopyOptions {
  /** Blob transfers and manifest reads at once (default 4). */
  parallelism?: number;
  /** Also copy signatures, attestations and SBOMs: legacy cosign tags and referrers (default true). */
  attachments?: boolean;
  onProgress?: (event: CopyEvent) => void;
  /** How referrers are added to the destination's fallback index. */
  referrers?: ReferrerWriteOptions;
  /** Retries of a streamed blob transfer broken by a connection error (default: 3, jittered). */
  retry?: RetryPolicy;
}

/** What a copy did. */
export interface CopyResult {
  /** The digest at the destination: always the source digest (asserted). */
  digest: string;
  mediaType: string;
  manifests: { pushed: number; present: number };
  blobs: { mounted: number; present: number; uploaded: number; bytesUploaded: number };
  /** Digests of the signatures, attestations and SBOMs copied, by how they were attached. */
  attachments: { tags: string[]; referrers: string[] };
}

const BYTES_EVENT_EVERY = 8 * 1024 * 1024;

/**
 * Copies `digest` from `source` to `destination` (a registry repository or an OCI layout on either
 * side): the manifest or index and every child, their blobs (mounted across repositories of one
 * registry, skipped when present, else streamed with digest checks), then the artifact's signatures
 * and attestations in both storage formats (cosign's `.sig`/`.att`/`.sbom` tags, merged into any the
 * destination already has; and referrers, made findable at the destination through its referrers
 * API or its fallback index), so the destination verifies as the source did. The destination's digest
 * is asserted equal to the source's (`digest_mismatch` otherwise). Referrers of referrers are not followed.
 */
export async function copyArtifact(
  source: ArtifactReader,
  digest: string,
  destination: ArtifactWriter,
  options: CopyOptions = {},
): Promise<CopyResult> {
  return new Copier(source, destination, options).run(assertDigest(digest));
}

class Copier {
  readonly #src: ArtifactReader;
  readonly #dst: ArtifactWriter;
  readonly #options: CopyOptions;
  readonly #slots: Semaphore;
  readonly #blobs = new Map<string, Promise<void>>();
  readonly #manifests = new Map<string, Promise<PutManifestResult>>();
  readonly #result: CopyResult;

  constructor(src: ArtifactReader, dst: ArtifactWriter, options: CopyOptions) {
    this.#src = src;
    this.#dst = dst;
    this.#options = options;
    this.#slots = new Semaphore(options.parallelism ?? 4);
    this.#result = {
      digest: "",
      mediaType: "",
      manifests: { pushed: 0, present: 0 },
      blobs: { mounted: 0, present: 0, uploaded: 0, bytesUploaded: 0 },
      attachments: { tags: [], referrers: [] },
    };
  }

  #emit(event: CopyEvent): void {
    this.#options.onProgress?.(event);
  }

  async run(digest: string): Promise<CopyResult> {
    const top = await this.#slots.run(() => this.#src.fetchManifest(digest));
    let put: PutManifestResult;
    if (await this.#dst.hasManifest(digest)) {
      // Present means complete: a registry refuses a manifest whose children it lacks, and stores
      // content under its own digest. A layout still lists it as a top-level entry.
      await this.#dst.markRoot?.(top.descriptor);
      put = { digest, subjectIndexed: false };
      this.#result.manifests.present++;
      this.#emit({ type: "manifest", digest, mediaType: top.descriptor.mediaType, action: "present" });
    } else {
      put = await this.#copyManifest(top, { root: true });
    }
    if (put.digest !== digest) {
      throw new FerryError("digest_mismatch", `${this.#dst.location}: stored ${digest} as ${put.digest}`);
    }
    this.#result.digest = digest;
    this.#result.mediaType = top.descriptor.mediaType;
    if (this.#options.attachments !== false) {
      const subjects = [
        digest,
        ...(top.manifest.kind === "index" ? top.manifest.value.manifests.map((d) => d.digest) : []),
      ];
      await this.#copyAttachments(subjects);
    }
    return this.#result;
  }

  /** Copies one manifest (children first) and returns what the destination said. */
  #copyManifest(fetched: FetchedManifest, options: PutManifestOptions = {}): Promise<PutManifestResult> {
    const digest = fetched.descriptor.digest;
    let done = this.#manifests.get(digest);
    if (done === undefined) {
      done = this.#copyContent(fetched).then(() => this.#putManifest(fetched, options));
      this.#manifests.set(digest, done);
    }
    return done;
  }

  /** Copies what a manifest refers to: an index's manifests, or an image's config and layers. */
  async #copyContent(fetched: FetchedManifest): Promise<void> {
    const { manifest } = fetched;
    if (manifest.kind === "index") {
      await Promise.all(
        manifest.value.manifests.map(async (child) => {
          const childManifest = await this.#slots.run(() => this.#src.fetchManifest(child.digest));
          if (childManifest.descriptor.size !== child.size) {
            throw new FerryError(
              "digest_mismatch",
              `${this.#src.location}@${child.digest}: ${childManifest.descriptor.size} bytes, the index says ${child.size}`,
            );
          }
          await this.#copyManifest(childManifest);
        }),
      );
    } else {
      await Promise.all(
        [manifest.value.config, ...manifest.value.layers].map((blob) => this.#copyBlob(blob)),
      );
    }
  }

  async #putManifest(fetched: FetchedManifest, options: PutManifestOptions): Promise<PutManifestResult> {
    const put = await this.#dst.putManifest(fetched.bytes, fetched.descriptor.mediaType, options);
    if (put.digest !== fetched.descriptor.digest) {
      throw new FerryError(
        "digest_mismatch",
        `${this.#dst.location}: stored ${fetched.descriptor.digest} as ${put.digest}`,
      );
    }
    this.#result.manifests.pushed++;
    this.#emit({
      type: "manifest",
      digest: put.digest,
      mediaType: fetched.descriptor.mediaType,
      action: "pushed",
    });
    return put;
  }

  #copyBlob(blob: Descriptor): Promise<void> {
    let done = this.#blobs.get(blob.digest);
    if (done === undefined) {
      done = this.#slots.run(() => this.#copyBlobOnce(blob));
      this.#blobs.set(blob.digest, done);
    }
    return done;
  }

  async #copyBlobOnce(blob: Descriptor): Promise<void> {
    const event = (action: "mounted" | "present" | "uploaded") => {
      this.#result.blobs[action]++;
      this.#emit({ type: "blob", digest: blob.digest, size: blob.size, action });
    };
    if (await this.#dst.mountBlob(blob, this.#src)) return event("mounted");
    if (await this.#dst.hasBlob(blob)) return event("present");
    const policy = this.#options.retry ?? DEFAULT_RETRY;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#stream(blob);
        break;
      } catch (err) {
        // A stream cannot be replayed by the transport; a broken connection restarts the whole blob.
        if (!isConnectionError(err) || attempt >= policy.retries) throw err;
        await sleep(backoffDelay(attempt + 1, policy));
      }
    }
    this.#result.blobs.bytesUploaded += blob.size;
    event("uploaded");
  }

  async #stream(blob: Descriptor): Promise<void> {
    const report = this.#options.onProgress;
    let next = 0;
    const onBytes = (transferred: number) => {
      if (transferred >= next || transferred === blob.size) {
        next = transferred + BYTES_EVENT_EVERY;
        this.#emit({ type: "bytes", digest: blob.digest, transferred, size: blob.size });
      }
    };
    // The source stream is verifying; the destination sees that and does not hash the bytes again.
    const stream = await this.#src.openBlob(blob, report ? { onBytes } : {});
    await this.#dst.putBlob(blob, stream);
  }

  async #copyAttachments(subjects: string[]): Promise<void> {
    const tags = await this.#sourceTags();
    await Promise.all(
      subjects.flatMap((subject) => [
        ...LEGACY_KINDS.map((kind) => this.#copyLegacy(subject, kind, tags)),
        this.#copyReferrers(subject),
      ]),
    );
  }

  // One listing answers "which legacy tags exist" for every subject at once; a source that will not
  // list tags is asked tag by tag instead.
  async #sourceTags(): Promise<Set<string> | undefined> {
    try {
      return new Set(await this.#src.listTags());
    } catch (err) {
      if (isFerryError(err, "not_found", "upstream_failed", "forbidden")) return undefined;
      throw err;
    }
  }

  async #copyLegacy(subject: string, kind: LegacyKind, tags: Set<string> | undefined): Promise<void> {
    const tag = legacyTag(subject, kind);
    if (tags !== undefined && !tags.has(tag)) return;
    const incoming = await this.#slots.run(() => this.#src.findManifest(tag));
    if (incoming === undefined) return;
    const existing = await this.#dst.findManifest(tag);
    if (existing === undefined) {
      await this.#copyManifest(incoming, { tag, ifMatch: null });
    } else if (
      existing.descriptor.digest !== incoming.descriptor.digest &&
      existing.manifest.kind === "image"
    ) {
      // The destination has its own: keep its signatures and add the source's (their blobs first).
      await this.#copyContent(incoming);
      const config = await this.#dst.fetchBlob(existing.manifest.value.config);
      const merged = mergeLegacyAttachment(existing, config, incoming);
      if (merged !== undefined) {
        await this.#dst.putBlob(merged.config.descriptor, merged.config.bytes);
        await this.#dst.putManifest(merged.manifest, merged.mediaType, {
          tag,
          ifMatch: existing.descriptor.digest,
        });
      }
    }
    this.#result.attachments.tags.push(incoming.descriptor.digest);
    this.#emit({ type: "attachment", kind, subject, digest: incoming.descriptor.digest });
  }

  async #copyReferrers(subject: string): Promise<void> {
    const referrers = await this.#slots.run(() => this.#src.listReferrers(subject));
    await Promise.all(
      referrers.map(async (entry) => {
        const fetched = await this.#slots.run(() => this.#src.fetchManifest(entry.digest));
        if (fetched.manifest.value.subject?.digest !== subject) return; // not about this subject: skip it
        const put = await this.#copyManifest(fetched);
        if (!put.subjectIndexed) {
          const descriptor = referrerDescriptor(fetched.manifest, put.digest, fetched.descriptor.size);
          await addToFallbackIndex(this.#dst, subject, descriptor, this.#options.referrers);
        }
        this.#result.attachments.referrers.push(put.digest);
        this.#emit({ type: "attachment", kind: "referrer", subject, digest: put.digest });
      }),
    );
  }
}
