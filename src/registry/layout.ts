import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { FerryError } from "../common/errors.ts";
import { KeyedMutex } from "../common/locks.ts";
import { assertDigest, isDigest, sha256 } from "./digest.ts";
import { fetchManifestIfPresent, verifiedManifest } from "./fetched.ts";
import { type Descriptor, type ImageIndex, indexSchema, MAX_MANIFEST_BYTES } from "./manifest.ts";
import { MediaType, REF_NAME_ANNOTATION } from "./media-types.ts";
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
import { fallbackReferrers } from "./referrers.ts";
import { isVerifying, readCapped, streamOf, verifyingStream } from "./streams.ts";

/** The prefix that names an OCI image layout where a registry reference could stand. */
export const LAYOUT_PREFIX = "oci-layout:";

const LAYOUT_FILE = { imageLayoutVersion: "1.0.0" };
const indexLocks = new KeyedMutex();

/**
 * An OCI image layout (a directory per the image-layout spec: `oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`) as a second transport beside registries, so Ferry can copy into and out of
 * air-gapped places. Tags are index.json entries' `org.opencontainers.image.ref.name`; referrers use
 * the same tag schema as registries without the referrers API (an index under `sha256-<hex>`), and
 * cosign's legacy `.sig`/`.att`/`.sbom` tags are ref names too. Every read is re-hashed: the files
 * are as untrusted as a registry. Writes are atomic (temp file + rename); index.json updates are
 * serialised within this process. Local file I/O does not stall as a network peer can, so only a
 * blob write (which may be draining a stalled source stream) honours a signal.
 */
export class OciLayout implements ArtifactWriter {
  readonly dir: string;
  readonly location: string;
  readonly #maxBlobBytes: number;

  private constructor(dir: string, maxBlobBytes: number) {
    this.dir = dir;
    this.location = `${LAYOUT_PREFIX}${dir}`;
    this.#maxBlobBytes = maxBlobBytes;
  }

  /** Opens a layout; with `create`, makes an empty one when the directory holds none. */
  static async open(
    dir: string,
    options: { create?: boolean; maxBlobBytes?: number } = {},
  ): Promise<OciLayout> {
    const layout = new OciLayout(path.resolve(dir), options.maxBlobBytes ?? 16 * 1024 * 1024);
    let marker: string | undefined;
    try {
      marker = await readFile(path.join(layout.dir, "oci-layout"), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (marker === undefined) {
      if (!options.create) {
        throw new FerryError(
          "not_found",
          `${layout.location}: no OCI image layout there (no oci-layout file)`,
        );
      }
      await mkdir(path.join(layout.dir, "blobs", "sha256"), { recursive: true });
      await writeFile(path.join(layout.dir, "oci-layout"), JSON.stringify(LAYOUT_FILE));
      await layout.#writeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
      return layout;
    }
    let version: unknown;
    try {
      version = (JSON.parse(marker) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (version !== "1.0.0") {
      throw new FerryError("unsupported_media_type", `${layout.location}: unsupported image layout version`);
    }
    return layout;
  }

  #blobPath(digest: string): string {
    const [algorithm, hex] = assertDigest(digest).split(":") as [string, string];
    return path.join(this.dir, "blobs", algorithm, hex);
  }

  async #readIndex(): Promise<ImageIndex> {
    const where = `${this.location}/index.json`;
    let text: string;
    try {
      text = await readFile(path.join(this.dir, "index.json"), "utf8");
    } catch (err) {
      throw new FerryError("not_found", `${where}: missing`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new FerryError("upstream_invalid", `${where}: not valid JSON`, { cause: err });
    }
    const parsed = indexSchema.safeParse(json);
    if (!parsed.success) throw new FerryError("upstream_invalid", `${where}: not an image index`);
    return parsed.data;
  }

  async #writeIndex(index: ImageIndex): Promise<void> {
    const file = path.join(this.dir, "index.json");
    const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(temp, JSON.stringify(index));
    await rename(temp, file);
  }

  async fetchManifest(reference: string): Promise<FetchedManifest> {
    const where = `${this.location}@${reference}`;
    const index = await this.#readIndex();
    const entry = isDigest(reference)
      ? index.manifests.find((d) => d.digest === reference)
      : index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === reference);
    if (!isDigest(reference) && entry === undefined)
      throw new FerryError("not_found", `${where}: no such ref name`);
    const digest = entry?.digest ?? reference;
    const bytes = await this.#readSmallBlob(digest, MAX_MANIFEST_BYTES, where);
    return verifiedManifest(bytes, entry?.mediaType, digest, undefined, where);
  }

  findManifest(reference: string): Promise<FetchedManifest | undefined> {
    return fetchManifestIfPresent(this, reference);
  }

  async hasManifest(digest: string, _options?: ReadOptions): Promise<boolean> {
    return (await this.#size(digest)) !== undefined;
  }

  async #size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.#blobPath(digest))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async #readSmallBlob(digest: string, max: number, where: string): Promise<Uint8Array> {
    const size = await this.#size(digest);
    if (size === undefined) throw new FerryError("not_found", `${where}: blob ${digest} missing`);
    if (size > max) throw new FerryError("payload_too_large", `${where}: over the ${max}-byte limit`);
    return new Uint8Array(await readFile(this.#blobPath(digest)));
  }

  async openBlob(descriptor: Descriptor, options: OpenBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const where = `blob ${descriptor.digest} of ${this.location}`;
    if ((await this.#size(descriptor.digest)) === undefined)
      throw new FerryError("not_found", `${where}: missing`);
    const file = Readable.toWeb(
      createReadStream(this.#blobPath(descriptor.digest)),
    ) as ReadableStream<Uint8Array>;
    return verifyingStream(file, descriptor, where, options.onBytes);
  }

  async fetchBlob(descriptor: Descriptor, options: FetchBlobOptions = {}): Promise<Uint8Array> {
    const max = options.maxBytes ?? this.#maxBlobBytes;
    const where = `blob ${descriptor.digest} of ${this.location}`;
    if (descriptor.size > max)
      throw new FerryError("payload_too_large", `${where}: over the ${max}-byte limit`);
    return readCapped(await this.openBlob(descriptor), max, where);
  }

  async listTags(_options?: ReadOptions): Promise<string[]> {
    const index = await this.#readIndex();
    return index.manifests.flatMap((d) => {
      const name = d.annotations?.[REF_NAME_ANNOTATION];
      return name === undefined ? [] : [name];
    });
  }

  listReferrers(digest: string, options: ListReferrersOptions = {}): Promise<Descriptor[]> {
    return fallbackReferrers(this, digest, options);
  }

  async hasBlob(descriptor: Descriptor, _options?: ReadOptions): Promise<boolean> {
    return (await this.#size(descriptor.digest)) === descriptor.size;
  }

  async putBlob(
    descriptor: Descriptor,
    content: Uint8Array | ReadableStream<Uint8Array>,
    options: ReadOptions = {},
  ): Promise<void> {
    const where = `blob ${descriptor.digest} into ${this.location}`;
    const target = this.#blobPath(descriptor.digest);
    if (await this.hasBlob(descriptor)) {
      if (content instanceof ReadableStream) await content.cancel();
      return;
    }
    await mkdir(path.dirname(target), { recursive: true });
    const temp = `${target}.${randomBytes(6).toString("hex")}.tmp`;
    const source = content instanceof ReadableStream ? content : streamOf(content);
    try {
      // The verifying stream fails before the end when the bytes are wrong; only then is it renamed in.
      const checked = isVerifying(source, descriptor) ? source : verifyingStream(source, descriptor, where);
      await checked.pipeTo(
        Writable.toWeb(createWriteStream(temp)),
        options.signal === undefined ? {} : { signal: options.signal },
      );
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  async mountBlob(
    _descriptor: Descriptor,
    _source: ArtifactReader,
    _options?: ReadOptions,
  ): Promise<boolean> {
    return false;
  }

  async markRoot(descriptor: Descriptor, _options?: ReadOptions): Promise<void> {
    await indexLocks.run(this.dir, async () => {
      const index = await this.#readIndex();
      if (index.manifests.some((d) => d.digest === descriptor.digest)) return;
      const { mediaType, digest, size } = descriptor;
      await this.#writeIndex({ ...index, manifests: [...index.manifests, { mediaType, digest, size }] });
    });
  }

  async putManifest(
    bytes: Uint8Array,
    mediaType: string,
    options: PutManifestOptions = {},
  ): Promise<PutManifestResult> {
    const digest = sha256(bytes);
    const descriptor: Descriptor = { mediaType, digest, size: bytes.byteLength };
    await this.putBlob(descriptor, bytes, options);
    const tag = options.tag;
    if (tag !== undefined) {
      await indexLocks.run(this.dir, async () => {
        const index = await this.#readIndex();
        const current = index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag);
        if (options.ifMatch !== undefined && (current?.digest ?? null) !== options.ifMatch) {
          throw new FerryError("conflict", `${this.location}: ref ${tag} changed since it was read`);
        }
        const manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
        manifests.push({ ...descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } });
        await this.#writeIndex({ ...index, manifests });
      });
    } else if (options.root) {
      await this.markRoot(descriptor);
    }
    return { digest, subjectIndexed: false };
  }
}
