/** Media types of the OCI image spec and Docker's schema 2, as the distribution spec uses them. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** Image manifests: an object that lists a config and layers (blobs). */
export const IMAGE_MANIFEST_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];

/** Indexes: an object that lists other manifests. */
export const INDEX_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];

/**
 * The Accept header of every manifest request. Distribution 2.8 answers 404 for an OCI manifest
 * unless its type is accepted, and falls back to converting to schema 1 when nothing is, so all four
 * schema 2 / OCI types are always named (and schema 1 never is).
 */
export const MANIFEST_ACCEPT = [...INDEX_TYPES, ...IMAGE_MANIFEST_TYPES].join(", ");

/** True for a media type Ferry reads as an index (a list of manifests). */
export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.includes(mediaType);
}

/** True for a media type Ferry reads as an image manifest (config + layers). */
export function isImageManifestType(mediaType: string): boolean {
  return IMAGE_MANIFEST_TYPES.includes(mediaType);
}

/** Strips parameters (`; charset=utf-8`) and case from a Content-Type value. */
export function bareMediaType(contentType: string | null | undefined): string | undefined {
  const bare = contentType?.split(";")[0]?.trim().toLowerCase();
  return bare === "" ? undefined : bare;
}

/** The annotation that names an entry of an OCI image layout's index.json (its "tag"). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
