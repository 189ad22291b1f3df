import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import { isDigest } from "./digest.ts";
import { bareMediaType, isImageManifestType, isIndexType, MediaType } from "./media-types.ts";

/** The largest manifest Ferry reads: the limit the distribution spec asks registries to accept. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const mediaTypeString = z.string().regex(/^[A-Za-z0-9][\w!#$&^.+-]*\/[\w!#$&^.+-]+$/, "not a media type");

/** An OCI content descriptor: what an object is, its digest and its size. */
export const descriptorSchema = z.looseObject({
  mediaType: mediaTypeString,
  digest: z.string().refine(isDigest, "not a sha256/sha512 digest"),
  size: z.int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  data: z.string().optional(),
  artifactType: mediaTypeString.optional(),
  platform: z
    .looseObject({
      architecture: z.string(),
      os: z.string(),
      variant: z.string().optional(),
      "os.version": z.string().optional(),
      "os.features": z.array(z.string()).optional(),
    })
    .optional(),
});

/** A content descriptor. */
export type Descriptor = z.infer<typeof descriptorSchema>;

const annotations = z.record(z.string(), z.string()).optional();

/** An OCI image manifest or a Docker schema 2 manifest: a config and layers. */
export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: mediaTypeString.optional(),
  artifactType: mediaTypeString.optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations,
});

/** An OCI image index or a Docker manifest list: a list of manifests. */
export const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: mediaTypeString.optional(),
  artifactType: mediaTypeString.optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations,
});

export type ImageManifest = z.infer<typeof imageManifestSchema>;
export type ImageIndex = z.infer<typeof indexSchema>;

/** A parsed manifest, tagged by kind; `mediaType` is the type it was served and verified as. */
export type Manifest =
  | { kind: "image"; mediaType: string; value: ImageManifest }
  | { kind: "index"; mediaType: string; value: ImageIndex };

function refuse(code: "unsupported_media_type" | "upstream_invalid", where: string, why: string): never {
  throw new FerryError(code, `${where}: ${why}`);
}

/**
 * Parses manifest bytes served as `contentType`. The type is the body's `mediaType` field when it has
 * one, else the served type; when both are present they must agree (a manifest cannot be read as
 * something it does not declare itself to be). Schema 1 is refused: it has no content digest of
 * its own and is deprecated. `where` names the object in messages.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new FerryError("upstream_invalid", `${where}: the manifest is not valid JSON`, { cause: err });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    refuse("upstream_invalid", where, "the manifest is not a JSON object");
  }
  const body = json as { schemaVersion?: unknown; mediaType?: unknown };
  const served = bareMediaType(contentType);
  const declared = typeof body.mediaType === "string" ? body.mediaType : undefined;
  if (
    body.schemaVersion === 1 ||
    served === MediaType.dockerSchema1 ||
    served === MediaType.dockerSchema1Signed
  ) {
    refuse(
      "unsupported_media_type",
      where,
      "Docker schema 1 manifests are not supported; push the image again with a current client (schema 2 or OCI)",
    );
  }
  if (declared !== undefined && served !== undefined && declared !== served && !isGeneric(served)) {
    refuse("upstream_invalid", where, `served as ${served} but declares itself ${declared}`);
  }
  const mediaType = declared ?? (served !== undefined && !isGeneric(served) ? served : undefined);
  if (mediaType !== undefined && isImageManifestType(mediaType)) {
    return { kind: "image", mediaType, value: check(imageManifestSchema, json, where) };
  }
  if (mediaType !== undefined && isIndexType(mediaType)) {
    return { kind: "index", mediaType, value: check(indexSchema, json, where) };
  }
  if (mediaType === undefined) {
    // An OCI manifest may omit `mediaType`; its shape then says what it is.
    if ("manifests" in body)
      return { kind: "index", mediaType: MediaType.ociIndex, value: check(indexSchema, json, where) };
    if ("config" in body) {
      return {
        kind: "image",
        mediaType: MediaType.ociManifest,
        value: check(imageManifestSchema, json, where),
      };
    }
  }
  return refuse("unsupported_media_type", where, `unsupported manifest media type ${mediaType ?? "(none)"}`);
}

// Some servers (and file-backed layouts) label manifests generically; the body's own field then decides.
function isGeneric(mediaType: string): boolean {
  return (
    mediaType === "application/json" || mediaType === "application/octet-stream" || mediaType === "text/plain"
  );
}

function check<T>(schema: z.ZodType<T>, json: unknown, where: string): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const at = first?.path.length ? ` at ${first.path.join(".")}` : "";
    throw new FerryError(
      "upstream_invalid",
      `${where}: malformed manifest${at}: ${first?.message ?? "invalid"}`,
      {
        cause: parsed.error,
      },
    );
  }
  return parsed.data;
}

/** The descriptors a manifest depends on: an image's config and layers, or an index's manifests. */
export function children(manifest: Manifest): Descriptor[] {
  return manifest.kind === "image"
    ? [manifest.value.config, ...manifest.value.layers]
    : manifest.value.manifests;
}

/** The subject descriptor, when the manifest is a referrer (an artifact about another manifest). */
export function subjectOf(manifest: Manifest): Descriptor | undefined {
  return manifest.value.subject;
}

/**
 * The descriptor by which a referrers list names `manifest`: per the distribution spec its
 * `artifactType` is the manifest's own, or else its config's media type, and it carries the
 * manifest's annotations.
 */
export function referrerDescriptor(manifest: Manifest, digest: string, size: number): Descriptor {
  const artifactType =
    manifest.value.artifactType ?? (manifest.kind === "image" ? manifest.value.config.mediaType : undefined);
  return {
    mediaType: manifest.mediaType,
    digest,
    size,
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(manifest.value.annotations === undefined ? {} : { annotations: manifest.value.annotations }),
  };
}
