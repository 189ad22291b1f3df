import { DEFAULT_RETRY, isConnectionError, type RetryPolicy, waitBeforeRetry } from "../common/backoff.ts";
import { type Clock, systemClock } from "../common/clock.ts";
import { FerryError, isFerryError } from "../common/errors.ts";
import { Semaphore } from "../common/locks.ts";
import { LEGACY_KINDS, type LegacyKind, legacyTag, mergeLegacyAttachment } from "./cosign-tags.ts";
import { assertDigest } from "./digest.ts";
import { type Descriptor, referrerDescriptor } from "./manifest.ts";
import type {
  ArtifactReader,
  ArtifactWriter,
  FetchedManifest,
  PutManifestOptions,
  PutManifestResult,
} from "./ports.ts";
import { addToFallbackIndex, type ReferrerWriteOptions } from "./referrers.ts";

/** Progress of a copy, reported as it happens. */
export type CopyEvent =
  | { type: "manifest"; digest: string; mediaType: string; action: "pushed" | "present" }
  | { type: "blob"; digest: string; size: number; action: "mounted" | "present" | "uploaded" }
  | { type: "bytes"; digest: string; transferred: number; size: number }
  | {
      type: "attachment";
      kind: LegacyKind | "referrer";
      subject: string;
      digest: string;
      /** `present`: the destination had it already (and its fallback index entry), nothing written. */
      action: "copied" | "present";
    };

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
  /** Times the backoff between those retries (default: the system clock). */
  clock?: Clock;
  /** Also tag the artifact at the destination (a valid OCI tag; see {@link assertTagName}). */
  tag?: string;
  /**
   * Stops the copy: passed to every read and write (aborting the request in flight and its
   * connection, so a stalled blob stream ends and its upload with it, and an upload the destination
   * stalls on is dropped), and checked before each further request; the copy then rejects with the
   * signal's reason. What was written stays (it is content-addressed: a later copy only fills in
   * the rest).
   */
  signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyResult {
  /** The digest at the destination: always the source digest (asserted). */
  digest: string;
  mediaType: string;
  manifests: { pushed: number; present: number };
  blobs: { mounted: number; present: number; uploaded: number; bytesUploaded: number };
  /**
   * Digests of the signatures, attestations and SBOMs at the destination, by how they are attached;
   * `present` counts those that were there already.
   */
  attachments: { tags: string[]; referrers: string[]; present: number };
  /** The tag asked for with {@link CopyOptions.tag}: `present` when it named the digest already. */
  tag?: { name: string; action: "pushed" | "present" };
  /** Whether anything at all was written to the destination (false for a repeated copy). */
  wrote: boolean;
}

// The OCI distribution spec's tag grammar.
const OCI_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Refuses a name that is not a valid OCI tag, with the rule, before anything is read or written. */
export function assertTagName(name: string): string {
  if (!OCI_TAG.test(name)) {
    throw new FerryError(
      "bad_request",
      `"${name.slice(0, 140)}" is not a valid OCI tag: up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"`,
    );
  }
  return name;
}

const BYTES_EVENT_EVERY = 8 * 1024 * 1024;
// Blobs up to this size are uploaded without asking the destination whether it has them.
const ASK_BEFORE_SENDING_ABOVE = 64 * 1024;

/**
 * Copies `digest` from `source` to `destination` (a registry repository or an OCI layout on either
 * side): the manifest or index and every child, their blobs (mounted across repositories of one
 * registry, skipped when present (blobs over 64 KiB), else streamed with digest checks), and beside
 * them the artifact's signatures and attestations in both storage formats (cosign's
 * `.sig`/`.att`/`.sbom` tags, merged into any the destination already has; and referrers, made
 * findable at the destination through its referrers
 * API or its fallback index), so the destination verifies as the source did. The destination's digest
 * is asserted equal to the source's (`digest_mismatch` otherwise). Referrers of referrers are not followed.
 */
export async function copyArtifact(
  source: ArtifactReader,
  digest: string,
  destination: ArtifactWriter,
  options: CopyOptions = {},
): Promise<CopyResult> {
  if (options.tag !== undefined) assertTagName(options.tag);
  return new Copier(source, destination, options).run(assertDigest(digest));
}

class Copier {
  readonly #src: ArtifactReader;
  readonly #dst: ArtifactWriter;
  readonly #options: CopyOptions;
  /** For every read and write: the copy's signal. */
  readonly #read: { signal?: AbortSignal };
  readonly #slots: Semaphore;
  readonly #blobs = new Map<string, Promise<void>>();
  readonly #manifests = new Map<string, Promise<PutManifestResult>>();
  readonly #listed = new Map<string, Promise<Set<string>>>();
  readonly #result: CopyResult;

  constructor(src: ArtifactReader, dst: ArtifactWriter, options: CopyOptions) {
    this.#src = src;
    this.#dst = dst;
    this.#options = options;
    this.#read = options.signal === undefined ? {} : { signal: options.signal };
    this.#slots = new Semaphore(options.parallelism ?? 4);
    this.#result = {
      digest: "",
      mediaType: "",
      manifests: { pushed: 0, present: 0 },
      blobs: { mounted: 0, present: 0, uploaded: 0, bytesUploaded: 0 },
      attachments: { tags: [], referrers: [], present: 0 },
      wrote: false,
    };
  }

  #emit(event: CopyEvent): void {
    this.#options.onProgress?.(event);
  }

  /** Between transfers: stop here once the copy's signal has aborted. */
  #check(): void {
    this.#options.signal?.throwIfAborted();
  }

  /** Runs `work` in a transfer slot, unless the copy was stopped while it queued. */
  #slot<T>(work: () => Promise<T>): Promise<T> {
    return this.#slots.run(() => {
      this.#check();
      return work();
    });
  }

  async run(digest: string): Promise<CopyResult> {
    this.#check();
    const top = await this.#slot(() => this.#src.fetchManifest(digest, this.#read));
    const subjects = [
      digest,
      ...(top.manifest.kind === "index" ? top.manifest.value.manifests.map((d) => d.digest) : []),
    ];
    // The attachments travel beside the image rather than after it: their few small objects need
    // nothing of the image's (a registry takes a manifest with a subject it lacks), so they need not
    // wait for its layers. Both are settled before the copy answers, so nothing writes on after it.
    const [image, attachments] = await Promise.allSettled([
      this.#copyTop(top, digest),
      this.#options.attachments === false ? undefined : this.#copyAttachments(subjects),
    ]);
    if (image.status === "rejected") throw image.reason;
    if (attachments.status === "rejected") throw attachments.reason;
    this.#check();
    if (this.#options.tag !== undefined) await this.#tag(top, this.#options.tag);
    const { manifests, blobs } = this.#result;
    this.#result.wrote ||= manifests.pushed + blobs.mounted + blobs.uploaded > 0;
    return this.#result;
  }

  /** Copies the artifact itself (the manifest or index and all it refers to), unless it is there. */
  async #copyTop(top: FetchedManifest, digest: string): Promise<void> {
    let put: PutManifestResult;
    this.#check();
    if (await this.#dst.hasManifest(digest, this.#read)) {
      // Present means complete: a registry refuses a manifest whose children it lacks, and stores
      // content under its own digest. A layout still lists it as a top-level entry.
      await this.#dst.markRoot?.(top.descriptor, this.#read);
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
  }

  /** Tags the copied artifact: the same bytes under the tag, unless the tag names it already. */
  async #tag(top: FetchedManifest, name: string): Promise<void> {
    const existing = await this.#dst.findManifest(name, this.#read);
    if (existing?.descriptor.digest === top.descriptor.digest) {
      this.#result.tag = { name, action: "present" };
      return;
    }
    const put = await this.#dst.putManifest(top.bytes, top.descriptor.mediaType, {
      ...this.#read,
      tag: name,
    });
    if (put.digest !== top.descriptor.digest) {
      throw new FerryError(
        "digest_mismatch",
        `${this.#dst.location}: stored ${top.descriptor.digest} as ${put.digest}`,
      );
    }
    this.#result.tag = { name, action: "pushed" };
    this.#result.wrote = true;
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
          const childManifest = await this.#slot(() => this.#src.fetchManifest(child.digest, this.#read));
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
    this.#check();
    const put = await this.#dst.putManifest(fetched.bytes, fetched.descriptor.mediaType, {
      ...options,
      ...this.#read,
    });
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
      done = this.#slot(() => this.#copyBlobOnce(blob));
      this.#blobs.set(blob.digest, done);
    }
    return done;
  }

  async #copyBlobOnce(blob: Descriptor): Promise<void> {
    const event = (action: "mounted" | "present" | "uploaded") => {
      this.#result.blobs[action]++;
      this.#emit({ type: "blob", digest: blob.digest, size: blob.size, action });
    };
    if (await this.#dst.mountBlob(blob, this.#src, this.#read)) return event("mounted");
    this.#check();
    // Asking first costs a round trip, and for a small blob (a config, a signature payload) sending
    // it costs about as much: a copy finds those missing far more often than not, so they are sent
    // unasked (a blob already there is stored again under its digest, unchanged).
    if (blob.size > ASK_BEFORE_SENDING_ABOVE && (await this.#dst.hasBlob(blob, this.#read)))
      return event("present");
    const policy = this.#options.retry ?? DEFAULT_RETRY;
    for (let attempt = 0; ; attempt++) {
      this.#check();
      try {
        await this.#stream(blob);
        break;
      } catch (err) {
        // Stopped: the aborted stream is not a broken connection to retry.
        this.#check();
        // A stream cannot be replayed by the transport; a broken connection restarts the whole blob.
        if (!isConnectionError(err) || attempt >= policy.retries) throw err;
        await waitBeforeRetry(this.#options.clock ?? systemClock, attempt + 1, policy, this.#read);
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
    const stream = await this.#src.openBlob(blob, report ? { ...this.#read, onBytes } : this.#read);
    await this.#dst.putBlob(blob, stream, this.#read);
  }

  async #copyAttachments(subjects: string[]): Promise<void> {
    this.#check();
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
      return new Set(await this.#src.listTags(this.#read));
    } catch (err) {
      if (
        isFerryError(
          err,
          "not_found",
          "forbidden",
          "upstream_failed",
          "upstream_denied",
          "upstream_invalid",
          "payload_too_large",
        )
      )
        return undefined;
      throw err;
    }
  }

  async #copyLegacy(subject: string, kind: LegacyKind, tags: Set<string> | undefined): Promise<void> {
    const tag = legacyTag(subject, kind);
    if (tags !== undefined && !tags.has(tag)) return;
    const incoming = await this.#slot(() => this.#src.findManifest(tag, this.#read));
    if (incoming === undefined) return;
    const existing = await this.#dst.findManifest(tag, this.#read);
    let action: "copied" | "present" = "present";
    if (existing === undefined) {
      await this.#copyManifest(incoming, { tag, ifMatch: null });
      action = "copied";
    } else if (
      existing.descriptor.digest !== incoming.descriptor.digest &&
      existing.manifest.kind === "image"
    ) {
      // The destination has its own: keep its signatures and add the source's (their blobs first).
      await this.#copyContent(incoming);
      const config = await this.#dst.fetchBlob(existing.manifest.value.config, this.#read);
      const merged = mergeLegacyAttachment(existing, config, incoming);
      if (merged !== undefined) {
        this.#check();
        await this.#dst.putBlob(merged.config.descriptor, merged.config.bytes, this.#read);
        await this.#dst.putManifest(merged.manifest, merged.mediaType, {
          ...this.#read,
          tag,
          ifMatch: existing.descriptor.digest,
        });
        action = "copied";
      }
    }
    this.#attached(action);
    this.#result.attachments.tags.push(incoming.descriptor.digest);
    this.#emit({ type: "attachment", kind, subject, digest: incoming.descriptor.digest, action });
  }

  /** Counts an attachment: a copied one is a write. */
  #attached(action: "copied" | "present"): void {
    if (action === "present") this.#result.attachments.present++;
    else this.#result.wrote = true;
  }

  /** The referrers the destination lists for `subject`, asked once per subject. */
  #dstReferrers(subject: string): Promise<Set<string>> {
    let listed = this.#listed.get(subject);
    if (listed === undefined) {
      listed = this.#slot(() => this.#dst.listReferrers(subject, this.#read)).then(
        (list) => new Set(list.map((d) => d.digest)),
      );
      this.#listed.set(subject, listed);
    }
    return listed;
  }

  async #copyReferrers(subject: string): Promise<void> {
    const referrers = await this.#slot(() => this.#src.listReferrers(subject, this.#read));
    await Promise.all(
      referrers.map(async (entry) => {
        const fetched = await this.#slot(() => this.#src.fetchManifest(entry.digest, this.#read));
        if (fetched.manifest.value.subject?.digest !== subject) return; // not about this subject: skip it
        const digest = fetched.descriptor.digest;
        let indexed: boolean;
        let action: "copied" | "present" = "copied";
        this.#check();
        if (await this.#dst.hasManifest(digest, this.#read)) {
          // There already (a repeated copy): write nothing if the destination also lists it, through
          // its referrers API or its fallback index; otherwise only the index entry is missing.
          indexed = (await this.#dstReferrers(subject)).has(digest);
          if (indexed) action = "present";
        } else {
          // #putManifest asserts the destination stored it under this digest.
          const put = await this.#copyManifest(fetched);
          indexed = put.subjectIndexed;
        }
        if (!indexed) {
          const descriptor = referrerDescriptor(fetched.manifest, digest, fetched.descriptor.size);
          const { clock, referrers: options } = this.#options;
          this.#check();
          await addToFallbackIndex(this.#dst, subject, descriptor, {
            ...(clock ? { clock } : {}),
            ...options,
            ...this.#read,
          });
        }
        this.#attached(action);
        this.#result.attachments.referrers.push(digest);
        this.#emit({ type: "attachment", kind: "referrer", subject, digest, action });
      }),
    );
  }
}
