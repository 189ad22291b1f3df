import { FerryError, isFerryError } from "../common/errors.ts";
import { fetchManifestIfPresent } from "./fetched.ts";
import { OciLayout } from "./layout.ts";
import type { Descriptor } from "./manifest.ts";
import type {
  ArtifactReader,
  ArtifactWriter,
  FetchBlobOptions,
  FetchedManifest,
  ListReferrersOptions,
  OpenBlobOptions,
  PutManifestOptions,
  PutManifestResult,
  ReadOptions,
} from "./ports.ts";

/**
 * An OCI image layout opened on first use, so it can stand where a registry repository does
 * (`RegistryClient.repositoryOf` is synchronous, opening a layout is not). A layout that does not
 * exist yet reads as an empty repository (nothing found, no tags, no referrers), as a registry
 * repository nobody pushed to does, and is created by its first write: a promotion into a fresh
 * `production` layout needs no step beforehand.
 */
export class LazyLayout implements ArtifactWriter {
  readonly location: string;
  readonly #dir: string;
  readonly #maxBlobBytes: number;
  #opened: Promise<OciLayout> | undefined;

  constructor(dir: string, maxBlobBytes: number) {
    this.#dir = dir;
    this.#maxBlobBytes = maxBlobBytes;
    this.location = `oci-layout:${dir}`;
  }

  /** The layout for reading; undefined while none exists there. */
  async #reader(): Promise<OciLayout | undefined> {
    if (this.#opened) return this.#opened;
    try {
      const layout = await OciLayout.open(this.#dir, { maxBlobBytes: this.#maxBlobBytes });
      this.#opened = Promise.resolve(layout);
      return layout;
    } catch (err) {
      if (isFerryError(err) && err.code === "not_found") return undefined;
      throw err;
    }
  }

  #writer(): Promise<OciLayout> {
    this.#opened ??= OciLayout.open(this.#dir, { create: true, maxBlobBytes: this.#maxBlobBytes });
    // A failed open is not kept: the next write tries again.
    this.#opened.catch(() => {
      this.#opened = undefined;
    });
    return this.#opened;
  }

  async fetchManifest(reference: string, _options?: ReadOptions): Promise<FetchedManifest> {
    const layout = await this.#reader();
    if (layout === undefined)
      throw new FerryError("not_found", `${this.location}: no OCI image layout there yet`);
    return layout.fetchManifest(reference);
  }

  findManifest(reference: string): Promise<FetchedManifest | undefined> {
    return fetchManifestIfPresent(this, reference);
  }

  async hasManifest(digest: string, options?: ReadOptions): Promise<boolean> {
    return (await this.#reader())?.hasManifest(digest, options) ?? false;
  }

  async fetchBlob(descriptor: Descriptor, options?: FetchBlobOptions): Promise<Uint8Array> {
    const layout = await this.#reader();
    if (layout === undefined)
      throw new FerryError("not_found", `${this.location}: no OCI image layout there yet`);
    return layout.fetchBlob(descriptor, options);
  }

  async openBlob(descriptor: Descriptor, options?: OpenBlobOptions): Promise<ReadableStream<Uint8Array>> {
    const layout = await this.#reader();
    if (layout === undefined)
      throw new FerryError("not_found", `${this.location}: no OCI image layout there yet`);
    return layout.openBlob(descriptor, options);
  }

  async listTags(options?: ReadOptions): Promise<string[]> {
    return (await this.#reader())?.listTags(options) ?? [];
  }

  async listReferrers(digest: string, options?: ListReferrersOptions): Promise<Descriptor[]> {
    return (await this.#reader())?.listReferrers(digest, options) ?? [];
  }

  async hasBlob(descriptor: Descriptor, options?: ReadOptions): Promise<boolean> {
    return (await this.#reader())?.hasBlob(descriptor, options) ?? false;
  }

  async putBlob(
    descriptor: Descriptor,
    content: Uint8Array | ReadableStream<Uint8Array>,
    options?: ReadOptions,
  ): Promise<void> {
    return (await this.#writer()).putBlob(descriptor, content, options);
  }

  async mountBlob(
    _descriptor: Descriptor,
    _source: ArtifactReader,
    _options?: ReadOptions,
  ): Promise<boolean> {
    return false;
  }

  async markRoot(descriptor: Descriptor, options?: ReadOptions): Promise<void> {
    return (await this.#writer()).markRoot(descriptor, options);
  }

  async putManifest(
    bytes: Uint8Array,
    mediaType: string,
    options?: PutManifestOptions,
  ): Promise<PutManifestResult> {
    return (await this.#writer()).putManifest(bytes, mediaType, options);
  }
}
