import type { Descriptor, Manifest } from "../registry/manifest.ts";

/** A manifest as verification needs it: its exact bytes (hashed against `digest`) and its parse. */
export interface ManifestObject {
  digest: string;
  bytes: Uint8Array;
  manifest: Manifest;
}

/**
 * Options of every read: `signal` is the verification's deadline. When it aborts, the read in flight
 * is cancelled (its connection and buffers released) and rejects with the signal's reason.
 */
export interface FetchOptions {
  signal?: AbortSignal | undefined;
}

/**
 * What verification reads from a registry, and nothing more. Every object returned has been
 * re-hashed against its digest by the adapter; a digest mismatch is thrown as `digest_mismatch`.
 */
export interface ArtifactFetcher {
  /** Where the artifact lives, for reports: `127.0.0.1:5000/team/app`. */
  readonly location: string;
  /** The manifest (or index) with this digest; throws `not_found` when absent. */
  manifest(digest: string, options?: FetchOptions): Promise<ManifestObject>;
  /** A blob, refused (`payload_too_large`) above `maxBytes`. */
  blob(descriptor: Descriptor, maxBytes: number, options?: FetchOptions): Promise<Uint8Array>;
  /** Descriptors of the referrers of `digest` (referrers API, else the tag-schema fallback index). */
  referrers(digest: string, options?: FetchOptions): Promise<Descriptor[]>;
  /** The manifest under a cosign legacy tag (`sha256-<hex>.sig` / `.att`), or undefined when absent. */
  legacyTag(tag: string, options?: FetchOptions): Promise<ManifestObject | undefined>;
}
