import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { tarOneFile } from "../../src/dev/image.ts";
import { makeTempDir, run } from "./proc.ts";

/** OCI media types used by the generated images. */
export const MediaTypes = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** `sha256:<hex>` of exactly these bytes: a manifest's digest is the hash of its exact serialization. */
export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A platform of an image index entry. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Options for {@link buildImageLayout}. */
export interface BuildImageOptions {
  /** Layers per image (default 1). */
  layers?: number;
  /** Bytes of random file content per layer (default 1024); random data does not compress. */
  layerSize?: number;
  /** When given, an OCI image index over one manifest per platform is built (even for one platform). */
  platforms?: Platform[];
  /** The `org.opencontainers.image.ref.name` in the layout's index.json (default "latest"). */
  refName?: string;
}

/** One generated image manifest. */
export interface BuiltManifest {
  digest: string;
  size: number;
  mediaType: string;
  platform: Platform;
  configDigest: string;
  layerDigests: string[];
}

/** What {@link buildImageLayout} wrote. */
export interface BuiltImage {
  dir: string;
  /** Digest of the top-level object: the image index when platforms were given, else the manifest. */
  digest: string;
  mediaType: string;
  size: number;
  /** The image manifests (one, or one per platform). */
  manifests: BuiltManifest[];
  /** Set when an image index was built. */
  indexDigest?: string;
}

async function writeBlob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256Digest(bytes);
  await writeFile(join(dir, "blobs", "sha256", digest.slice("sha256:".length)), bytes);
  return { digest, size: bytes.length };
}

async function buildManifest(
  dir: string,
  platform: Platform,
  layers: number,
  layerSize: number,
): Promise<BuiltManifest> {
  const layerDescriptors = [];
  const diffIds: string[] = [];
  for (let i = 0; i < layers; i++) {
    const tar = tarOneFile(`ferry-layer-${i}.bin`, randomBytes(layerSize));
    diffIds.push(sha256Digest(tar));
    const blob = await writeBlob(dir, gzipSync(tar));
    layerDescriptors.push({ mediaType: MediaTypes.layerGzip, ...blob });
  }
  const config = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: new Date().toISOString(),
    config: { Labels: { "org.opencontainers.image.title": "ferry-test-image" } },
    rootfs: { type: "layers", diff_ids: diffIds },
  };
  const configBlob = await writeBlob(dir, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.manifest,
    config: { mediaType: MediaTypes.config, ...configBlob },
    layers: layerDescriptors,
  };
  const manifestBlob = await writeBlob(dir, Buffer.from(JSON.stringify(manifest)));
  return {
    ...manifestBlob,
    mediaType: MediaTypes.manifest,
    platform,
    configDigest: configBlob.digest,
    layerDigests: layerDescriptors.map((l) => l.digest),
  };
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256/…) with random gzip layers into
 * `dir` (created if needed): a single image manifest, or an image index over one manifest per platform.
 * Every call makes new random layers, hence new digests.
 */
export async function buildImageLayout(dir: string, opts: BuildImageOptions = {}): Promise<BuiltImage> {
  const layers = opts.layers ?? 1;
  const layerSize = opts.layerSize ?? 1024;
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));

  const manifests: BuiltManifest[] = [];
  for (const platform of opts.platforms ?? [{ os: "linux", architecture: "amd64" }]) {
    manifests.push(await buildManifest(dir, platform, layers, layerSize));
  }
  let top: { digest: string; size: number; mediaType: string };
  let indexDigest: string | undefined;
  if (opts.platforms) {
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.index,
      manifests: manifests.map((m) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.size,
        platform: m.platform,
      })),
    };
    const blob = await writeBlob(dir, Buffer.from(JSON.stringify(index)));
    top = { ...blob, mediaType: MediaTypes.index };
    indexDigest = blob.digest;
  } else {
    const only = manifests[0]!;
    top = { digest: only.digest, size: only.size, mediaType: only.mediaType };
  }
  const layoutIndex = {
    schemaVersion: 2,
    mediaType: MediaTypes.index,
    manifests: [{ ...top, annotations: { "org.opencontainers.image.ref.name": opts.refName ?? "latest" } }],
  };
  await writeFile(join(dir, "index.json"), JSON.stringify(layoutIndex));
  return { dir, ...top, manifests, indexDigest };
}

/** Registry credentials. */
export interface Credentials {
  username: string;
  password: string;
}

/**
 * Pushes an OCI layout (as written by {@link buildImageLayout}) to `registry` as `repoAndTag`
 * ("team/app:v1") with skopeo, all platforms and exact digests preserved, over plain http.
 * Credentials default to the registry object's own user. Returns the pushed manifest (or index) digest.
 */
export async function pushImage(
  layoutDir: string,
  registry: string | { host: string; username?: string; password?: string },
  repoAndTag: string,
  creds?: Credentials,
): Promise<string> {
  const host = typeof registry === "string" ? registry : registry.host;
  const auth =
    creds ??
    (typeof registry !== "string" && registry.username !== undefined && registry.password !== undefined
      ? { username: registry.username, password: registry.password }
      : undefined);
  const tmp = await makeTempDir("skopeo");
  try {
    const digestFile = join(tmp.path, "digest");
    const args = [
      "copy",
      // The system policy could demand signatures; these pushes are of test images only.
      "--insecure-policy",
      "--all",
      "--preserve-digests",
      "--quiet",
      "--dest-tls-verify=false",
      "--digestfile",
      digestFile,
    ];
    if (auth) args.push("--dest-creds", `${auth.username}:${auth.password}`);
    args.push(`oci:${layoutDir}`, `docker://${host}/${repoAndTag}`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // An empty auth file: no stray credentials from the machine are sent to the test registry.
      REGISTRY_AUTH_FILE: join(tmp.path, "auth.json"),
      NO_PROXY: "127.0.0.1,localhost",
      no_proxy: "127.0.0.1,localhost",
    };
    await writeFile(env.REGISTRY_AUTH_FILE as string, '{"auths":{}}');
    const res = await run("skopeo", args, { env, timeoutMs: 120_000 });
    if (res.code !== 0) {
      const hint = res.stderr.includes("cannot start") ? " (run scripts/install-test-deps.sh)" : "";
      throw new Error(
        `skopeo copy to ${host}/${repoAndTag} failed (${res.code})${hint}: ${res.stderr.trim()}`,
      );
    }
    return (await readFile(digestFile, "utf8")).trim();
  } finally {
    await tmp.remove();
  }
}
