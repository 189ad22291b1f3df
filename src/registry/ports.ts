import type { Descriptor, Manifest } from "./manifest.ts";

/** A manifest read and verified: its exact bytes, what they parse to, and their descriptor. */
export interface FetchedManifest {
  /** `digest` is the hash of `bytes` (checked); `mediaType` the type they were read as. */
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: Manifest;
}

/**
 * Cancellation of a read or a write: when `signal` aborts, the request in flight is aborted (its
 * connection and buffers released, an upload's body included) and the call rejects with the
 * signal's reason. Readers and writers without network I/O (an OCI layout) may ignore it.
 */
export interface ReadOptions {
  signal?: AbortSignal | undefined;
}

/** Options for reading a blob into memory. */
export interface FetchBlobOptions extends ReadOptions {
  /** Refuse the blob when its descriptor, or the bytes served, are larger than this. */
  maxBytes?: number;
}

/** Options for {@link ArtifactReader.openBlob}. */
export interface OpenBlobOptions extends ReadOptions {
  /** Called with the running byte count as the stream is read (progress reporting). */
  onBytes?: (total: number) => void;
}

/** Options for {@link ArtifactReader.listReferrers}. */
export interface ListReferrersOptions extends ReadOptions {
  /** Only referrers of this artifact type. */
  artifactType?: string;
}

/**
 * Reads one repository's content-addressed objects: a repository in a registry, or an OCI image
 * layout. Everything returned has been re-hashed against its digest.
 */
export interface ArtifactReader {
  /** Where this is, for messages: `127.0.0.1:5000/team/app` or `oci-layout:/path`. */
  readonly location: string;
  /** The manifest or index at `reference` (a digest or a tag); throws `not_found` when absent. */
  fetchManifest(reference: string, options?: ReadOptions): Promise<FetchedManifest>;
  /** Like {@link fetchManifest}, but undefined when absent. */
  findManifest(reference: string, options?: ReadOptions): Promise<FetchedManifest | undefined>;
  /** Whether a manifest with this digest exists here. */
  hasManifest(digest: string, options?: ReadOptions): Promise<boolean>;
  /** A blob's bytes, verified; refused over `maxBytes`. */
  fetchBlob(descriptor: Descriptor, options?: FetchBlobOptions): Promise<Uint8Array>;
  /**
   * A blob as a stream that errors (`digest_mismatch`) unless exactly `descriptor.size` bytes with
   * `descriptor.digest` pass through it. Consumers must not act on the bytes before the stream ends.
   */
  openBlob(descriptor: Descriptor, options?: OpenBlobOptions): Promise<ReadableStream<Uint8Array>>;
  /** Every tag (or layout ref name) of the repository. */
  listTags(options?: ReadOptions): Promise<string[]>;
  /** Descriptors of the manifests whose `subject` is `digest` (referrers API, else the tag fallback). */
  listReferrers(digest: string, options?: ListReferrersOptions): Promise<Descriptor[]>;
}

/** Options for {@link ArtifactWriter.putManifest}. */
export interface PutManifestOptions extends ReadOptions {
  /** Also (or instead of the digest) store it under this tag. */
  tag?: string;
  /**
   * Compare-and-swap on the tag: the digest the tag must still point to, or `null` for "the tag must
   * not exist". A registry that honours conditional requests answers 412, reported as `conflict`.
   */
  ifMatch?: string | null;
  /** Mark it as a top-level entry: an OCI layout lists it in index.json; registries ignore this. */
  root?: boolean;
}

/** What a manifest write reported. */
export interface PutManifestResult {
  /** The digest the destination computed for the bytes. */
  digest: string;
  /** True when the destination indexed the manifest's `subject` itself (an `OCI-Subject` answer). */
  subjectIndexed: boolean;
}

/** Writes content-addressed objects into one repository (it reads too: updates are read-modify-write). */
export interface ArtifactWriter extends ArtifactReader {
  /** Whether this blob already exists here. */
  hasBlob(descriptor: Descriptor, options?: ReadOptions): Promise<boolean>;
  /**
   * Stores a blob. Bytes are checked against the digest before they are committed; a stream is
   * consumed once, so a failed streamed upload is not retried here.
   */
  putBlob(
    descriptor: Descriptor,
    content: Uint8Array | ReadableStream<Uint8Array>,
    options?: ReadOptions,
  ): Promise<void>;
  /**
   * Makes a blob of `source` available here without moving its bytes, when both live in the same
   * registry (a cross-repository mount). Returns false when that is not possible.
   */
  mountBlob(descriptor: Descriptor, source: ArtifactReader, options?: ReadOptions): Promise<boolean>;
  /**
   * Lists a manifest already stored here as a top-level entry (an OCI layout's index.json); a
   * registry has no such notion and does not implement it.
   */
  markRoot?(descriptor: Descriptor, options?: ReadOptions): Promise<void>;
  /** Stores a manifest (under `options.tag` when given, else by its digest). */
  putManifest(bytes: Uint8Array, mediaType: string, options?: PutManifestOptions): Promise<PutManifestResult>;
}
