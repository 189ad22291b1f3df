/** What a file pins for a target: the repository and the digest, each when it can be read. */
export interface Pinned {
  repository?: string;
  digest?: string;
}

/** `repo@sha256:…`, the value a one-reference target writes. */
export function formatReference(repository: string, digest: string): string {
  return `${repository}@${digest}`;
}

/**
 * Reads an image reference as a file may hold it, leniently (drift reports what is there, valid or
 * not; Ferry only ever writes references it validated): `repo`, `repo:tag`, `repo@digest` or
 * `repo:tag@digest`. The tag is dropped (a digest pins; a tag alone pins nothing). A port in the host
 * (`host:5000/app`) is not a tag: a tag's colon comes after the last `/`.
 */
export function readReference(value: string): Pinned {
  const at = value.indexOf("@");
  const name = at < 0 ? value : value.slice(0, at);
  const digest = at < 0 ? undefined : value.slice(at + 1);
  const colon = name.lastIndexOf(":");
  const repository = colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
  const pinned: Pinned = {};
  if (repository !== "") pinned.repository = repository;
  if (digest !== undefined && digest !== "") pinned.digest = digest;
  return pinned;
}
