import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import { repositoryScope } from "./auth.ts";
import { assertDigest, sha256, verifyBytes } from "./digest.ts";
import { fetchManifestIfPresent, verifiedManifest } from "./fetched.ts";
import type { HttpResponse } from "./http.ts";
import { type Descriptor, indexSchema, MAX_MANIFEST_BYTES } from "./manifest.ts";
import { bareMediaType, MANIFEST_ACCEPT, MediaType } from "./media-types.ts";
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
import { fallbackReferrers, filterByArtifactType } from "./referrers.ts";
import { statusError } from "./status.ts";
import { isVerifying, readCapped, verifyingStream } from "./streams.ts";
import type { RegistryRequest, RegistryTransport } from "./transport.ts";

/** What a repository shares with every other repository of its registry. */
export interface RegistryContext {
  readonly transport: RegistryTransport;
  /** Whether the registry serves the referrers API: unknown until asked once, then remembered. */
  referrersApi: boolean | undefined;
  /** The default cap for {@link RegistryRepository.fetchBlob}. */
  readonly maxBlobBytes: number;
}

const tagList = z.object({ name: z.string(), tags: z.array(z.string()).nullable().optional() });
const TAGS_PAGE = 1000;

/**
 * One repository in an allow-listed registry, over the OCI distribution API: manifests and blobs
 * (every read re-hashed), uploads and cross-repository mounts, tags, and referrers (the API, or the
 * tag-schema fallback on registries without it).
 */
export class RegistryRepository implements ArtifactWriter {
  readonly registry: string;
  readonly repository: string;
  readonly location: string;
  readonly #ctx: RegistryContext;

  constructor(ctx: RegistryContext, registry: string, repository: string) {
    this.#ctx = ctx;
    this.registry = registry;
    this.repository = repository;
    this.location = `${registry}/${repository}`;
  }

  #send(req: Omit<RegistryRequest, "scopes"> & { scopes?: readonly string[] }): Promise<HttpResponse> {
    return this.#ctx.transport.send({ scopes: [repositoryScope(this.repository, ["pull"])], ...req });
  }

  #push(): string[] {
    return [repositoryScope(this.repository, ["pull", "push"])];
  }

  async fetchManifest(reference: string, options: ReadOptions = {}): Promise<FetchedManifest> {
    const where = `${this.location}@${reference}`;
    const res = await this.#send({
      method: "GET",
      url: `/v2/${this.repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      where,
      signal: options.signal,
    });
    if (res.status !== 200) throw await statusError(res, where);
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > MAX_MANIFEST_BYTES) {
      await res.discard();
      throw new FerryError(
        "payload_too_large",
        `${where}: manifest larger than ${MAX_MANIFEST_BYTES} bytes`,
        {
          detail: { declaredBytes: declared },
        },
      );
    }
    const bytes = await res.bytes(MAX_MANIFEST_BYTES);
    return verifiedManifest(
      bytes,
      bareMediaType(res.headers.get("content-type")),
      reference,
      res.headers.get("docker-content-digest"),
      where,
    );
  }

  findManifest(reference: string, options: ReadOptions = {}): Promise<FetchedManifest | undefined> {
    return fetchManifestIfPresent(this, reference, options);
  }

  async hasManifest(digest: string, options: ReadOptions = {}): Promise<boolean> {
    const where = `${this.location}@${digest}`;
    const res = await this.#send({
      method: "HEAD",
      url: `/v2/${this.repository}/manifests/${assertDigest(digest)}`,
      headers: { accept: MANIFEST_ACCEPT },
      where,
      signal: options.signal,
    });
    await res.discard();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await statusError(res, where);
  }

  async openBlob(descriptor: Descriptor, options: OpenBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const where = `blob ${descriptor.digest} of ${this.location}`;
    const res = await this.#send({
      method: "GET",
      url: `/v2/${this.repository}/blobs/${assertDigest(descriptor.digest)}`,
      storageRedirects: true,
      where,
      signal: options.signal,
    });
    if (res.status !== 200 || res.body === null) throw await statusError(res, where);
    return verifyingStream(res.body, descriptor, where, options.onBytes);
  }

  async fetchBlob(descriptor: Descriptor, options: FetchBlobOptions = {}): Promise<Uint8Array> {
    const max = options.maxBytes ?? this.#ctx.maxBlobBytes;
    const where = `blob ${descriptor.digest} of ${this.location}`;
    if (descriptor.size > max) {
      throw new FerryError(
        "payload_too_large",
        `${where}: ${descriptor.size} bytes is over the ${max}-byte limit`,
        {
          extra: { limit: max },
        },
      );
    }
    return readCapped(await this.openBlob(descriptor, { signal: options.signal }), max, where);
  }

  async hasBlob(descriptor: Descriptor, options: ReadOptions = {}): Promise<boolean> {
    const where = `blob ${descriptor.digest} of ${this.location}`;
    const res = await this.#send({
      method: "HEAD",
      url: `/v2/${this.repository}/blobs/${assertDigest(descriptor.digest)}`,
      storageRedirects: true,
      where,
      signal: options.signal,
    });
    await res.discard();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await statusError(res, where);
  }

  async putBlob(
    descriptor: Descriptor,
    content: Uint8Array | ReadableStream<Uint8Array>,
    options: ReadOptions = {},
  ): Promise<void> {
    const where = `upload of blob ${descriptor.digest} to ${this.location}`;
    const started = await this.#send({
      method: "POST",
      url: `/v2/${this.repository}/blobs/uploads/`,
      scopes: this.#push(),
      where,
      signal: options.signal,
    });
    const location = started.headers.get("location");
    if (started.status !== 202 || location === null) throw await statusError(started, where);
    await started.discard();
    const url = new URL(location, this.#ctx.transport.endpoint.origin);
    url.searchParams.set("digest", assertDigest(descriptor.digest));
    // Checked on the way out too: a stream that turns out wrong fails the upload before it commits.
    if (!(content instanceof ReadableStream)) verifyBlobBytes(content, descriptor, where);
    const body =
      content instanceof ReadableStream && !isVerifying(content, descriptor)
        ? verifyingStream(content, descriptor, where)
        : content;
    const done = await this.#send({
      method: "PUT",
      url: url.href,
      scopes: this.#push(),
      headers: { "content-type": "application/octet-stream", "content-length": String(descriptor.size) },
      body,
      where,
      signal: options.signal,
    });
    if (done.status !== 201) throw await statusError(done, where);
    await done.discard();
    const stored = done.headers.get("docker-content-digest");
    if (stored !== null && stored !== descriptor.digest) {
      throw new FerryError("digest_mismatch", `${where}: the registry stored it as ${stored}`);
    }
  }

  async mountBlob(
    descriptor: Descriptor,
    source: ArtifactReader,
    options: ReadOptions = {},
  ): Promise<boolean> {
    if (!(source instanceof RegistryRepository) || source.#ctx !== this.#ctx) return false;
    const where = `mount of blob ${descriptor.digest} from ${source.location} to ${this.location}`;
    const url = `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(assertDigest(descriptor.digest))}&from=${encodeURIComponent(source.repository)}`;
    const res = await this.#send({
      method: "POST",
      url,
      scopes: [...this.#push(), repositoryScope(source.repository, ["pull"])],
      where,
      signal: options.signal,
    });
    await res.discard();
    if (res.status === 201) return true;
    // 202: the registry would not mount (it opened an ordinary upload instead, which it will purge).
    if (res.status === 202) return false;
    throw await statusError(res, where);
  }

  async putManifest(
    bytes: Uint8Array,
    mediaType: string,
    options: PutManifestOptions = {},
  ): Promise<PutManifestResult> {
    const digest = sha256(bytes);
    const reference = options.tag ?? digest;
    const where = `push of manifest ${reference} to ${this.location}`;
    const headers: Record<string, string> = { "content-type": mediaType };
    // Registries that implement conditional requests turn a lost race into 412 instead of a lost update.
    if (typeof options.ifMatch === "string") headers["if-match"] = `"${options.ifMatch}"`;
    if (options.ifMatch === null) headers["if-none-match"] = "*";
    const res = await this.#send({
      method: "PUT",
      url: `/v2/${this.repository}/manifests/${reference}`,
      scopes: this.#push(),
      headers,
      body: bytes,
      where,
      signal: options.signal,
    });
    if (res.status === 412) {
      await res.discard();
      throw new FerryError("conflict", `${where}: the tag changed since it was read`);
    }
    if (res.status !== 201) throw await statusError(res, where);
    await res.discard();
    const stored = res.headers.get("docker-content-digest");
    if (stored !== null && stored !== digest) {
      throw new FerryError("digest_mismatch", `${where}: the registry stored it as ${stored}, not ${digest}`);
    }
    return { digest, subjectIndexed: res.headers.get("oci-subject") !== null };
  }

  async listTags(options: ReadOptions = {}): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${this.repository}/tags/list?n=${TAGS_PAGE}`;
    for (let page = 0; next !== undefined && page < 10_000; page++) {
      const where = `tags of ${this.location}`;
      const res = await this.#send({ method: "GET", url: next, where, signal: options.signal });
      if (res.status === 404) {
        await res.discard();
        return tags;
      }
      if (res.status !== 200) throw await statusError(res, where);
      const parsed = tagList.safeParse(await jsonBody(res, where));
      if (!parsed.success) throw new FerryError("upstream_invalid", `${where}: malformed tag list`);
      tags.push(...(parsed.data.tags ?? []));
      next = nextLink(res.headers.get("link"));
    }
    return tags;
  }

  async listReferrers(digest: string, options: ListReferrersOptions = {}): Promise<Descriptor[]> {
    if (this.#ctx.referrersApi !== false) {
      const where = `referrers of ${this.location}@${digest}`;
      const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : "";
      const res = await this.#send({
        method: "GET",
        url: `/v2/${this.repository}/referrers/${assertDigest(digest)}${query}`,
        headers: { accept: MediaType.ociIndex },
        where,
        signal: options.signal,
      });
      if (res.status === 200) {
        this.#ctx.referrersApi = true;
        const parsed = indexSchema.safeParse(await jsonBody(res, where));
        if (!parsed.success) throw new FerryError("upstream_invalid", `${where}: malformed referrers list`);
        const filtered = (res.headers.get("oci-filters-applied") ?? "").split(",").includes("artifactType");
        return filtered
          ? parsed.data.manifests
          : filterByArtifactType(this, parsed.data.manifests, options.artifactType, options);
      }
      // The spec forbids 404 from a registry that serves the API: 404 means "use the tag schema".
      if (res.status !== 404) throw await statusError(res, where);
      await res.discard();
      this.#ctx.referrersApi = false;
    }
    return fallbackReferrers(this, digest, options);
  }
}

function verifyBlobBytes(bytes: Uint8Array, descriptor: Descriptor, where: string): void {
  if (bytes.byteLength !== descriptor.size) {
    throw new FerryError(
      "digest_mismatch",
      `${where}: ${bytes.byteLength} bytes where the descriptor declares ${descriptor.size}`,
    );
  }
  verifyBytes(bytes, descriptor.digest, where);
}

// `Link: </v2/x/tags/list?n=1000&last=b>; rel="next"` (RFC 8288), as distribution paginates.
function nextLink(header: string | null): string | undefined {
  const match = header?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  return match?.[1];
}

/** A registry's small JSON answer (a tag or referrers list); not JSON is `upstream_invalid`, never a bare SyntaxError. */
async function jsonBody(res: HttpResponse, where: string): Promise<unknown> {
  const text = new TextDecoder().decode(await res.bytes(MAX_MANIFEST_BYTES));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FerryError("upstream_invalid", `${where}: the answer is not JSON`, { cause: err });
  }
}
