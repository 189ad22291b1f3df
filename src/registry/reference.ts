import path from "node:path";
import { FerryError } from "../common/errors.ts";
import { isDigest } from "./digest.ts";
import { LAYOUT_PREFIX } from "./layout.ts";

// The grammar of distribution/reference (reference/regexp.go), anchored piece by piece.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const HOST = new RegExp(`^(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_SYNTAX = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const NAME_MAX = 255;

/**
 * The `registry` of a reference to an OCI image layout (`oci-layout:/abs/dir[@digest]`). Its
 * `repository` is the absolute directory without its leading slash, so that `${registry}/${repository}`
 * is the layout's location `oci-layout:/abs/dir`, the same text apps[].images holds once resolved.
 */
export const LAYOUT_REGISTRY = LAYOUT_PREFIX;

/** Whether a parsed reference names an OCI image layout rather than a registry repository. */
export function isLayoutReference(ref: { registry: string }): boolean {
  return ref.registry === LAYOUT_REGISTRY;
}

/** The directory of a layout reference (see {@link LAYOUT_REGISTRY}). */
export function layoutDirectory(ref: { repository: string }): string {
  return `/${ref.repository}`;
}

/**
 * Parses `oci-layout:/abs/dir[@digest]`. Only absolute directories: a relative one would mean
 * something different to each process that reads it (config files resolve theirs at load). No tag
 * (a path may hold colons); the digest is after the last `@`.
 */
function parseLayoutReference(text: string): ImageReference {
  const rest = text.trim().slice(LAYOUT_PREFIX.length);
  const at = rest.lastIndexOf("@");
  const dir = at < 0 ? rest : rest.slice(0, at);
  const digest = at < 0 ? undefined : rest.slice(at + 1);
  if (digest !== undefined && !isDigest(digest)) {
    throw invalid(text, `"${digest}" is not sha256:<64 lower-case hex> or sha512:<128 hex>`);
  }
  if (!path.posix.isAbsolute(dir)) {
    throw invalid(text, `an OCI layout is named by its absolute directory: ${LAYOUT_PREFIX}/path/to/layout`);
  }
  const normal = path.posix.normalize(dir).replace(/\/+$/, "");
  if (normal === "") throw invalid(text, "the layout directory is the file system root");
  return { registry: LAYOUT_REGISTRY, repository: normal.slice(1), ...(digest ? { digest } : {}) };
}

/**
 * An `oci-layout:` reference with a relative directory made absolute against `base` (a command
 * line's working directory); any other text is returned as it is.
 */
export function absoluteLayoutReference(text: string, base: string): string {
  if (!text.startsWith(LAYOUT_PREFIX)) return text;
  const rest = text.slice(LAYOUT_PREFIX.length);
  const at = rest.lastIndexOf("@");
  const dir = at < 0 ? rest : rest.slice(0, at);
  return `${LAYOUT_PREFIX}${path.resolve(base, dir)}${at < 0 ? "" : rest.slice(at)}`;
}

/** A parsed image reference. The registry is always explicit: Ferry has no default registry. */
export interface ImageReference {
  /** `host[:port]` exactly as written, e.g. `registry.example.com` or `127.0.0.1:5000`. */
  registry: string;
  /** The repository path, e.g. `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** A reference pinned to a digest: what every decision in Ferry is about. */
export interface DigestReference {
  registry: string;
  repository: string;
  digest: string;
}

/** A repository, with no tag or digest: the destination of a copy. */
export interface RepositoryReference {
  registry: string;
  repository: string;
}

function invalid(text: string, why: string): FerryError {
  return new FerryError("bad_request", `"${text}" is not a valid image reference: ${why}`);
}

/**
 * Parses `host[:port]/path[:tag][@digest]` by the distribution reference grammar. The first path
 * component must be a registry host (it contains a dot or a colon, or is `localhost`): a name such as
 * `library/nginx` is refused instead of silently meaning Docker Hub. Digests must be sha256 or sha512.
 * `oci-layout:/abs/dir[@digest]` names an OCI image layout instead (see {@link LAYOUT_REGISTRY}).
 */
export function parseReference(text: string): ImageReference {
  if (text.trim().startsWith(LAYOUT_PREFIX)) return parseLayoutReference(text);
  let rest = text.trim();
  if (rest === "") throw invalid(text, "it is empty");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_SYNTAX.test(digest)) throw invalid(text, `"${digest}" is not a digest`);
    if (!isDigest(digest)) {
      throw invalid(text, `digest "${digest}" is not sha256:<64 lower-case hex> or sha512:<128 hex>`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(text, `"${tag}" is not a valid tag`);
  }
  const slash = rest.indexOf("/");
  const first = slash < 0 ? rest : rest.slice(0, slash);
  const isHost = first.includes(".") || first.includes(":") || first === "localhost";
  if (!isHost || slash < 0) {
    throw new FerryError(
      "bad_request",
      `"${text}" does not name its registry: write the host too, e.g. registry.example.com/${rest}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""} (Ferry has no default registry)`,
    );
  }
  if (!HOST.test(first)) throw invalid(text, `"${first}" is not a valid registry host`);
  const repository = rest.slice(slash + 1);
  if (repository === "") throw invalid(text, "the repository path is empty");
  for (const component of repository.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        text,
        `path component "${component}" must be lower-case letters and digits, separated by ".", "_", "__" or "-"`,
      );
    }
  }
  if (rest.length > NAME_MAX) throw invalid(text, `the name is longer than ${NAME_MAX} characters`);
  return {
    registry: first,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest ? { digest } : {}),
  };
}

/**
 * Parses a reference that must be pinned to a digest. A tag alone is refused with `tag_reference`
 * and a message that says how to find the digest; a tag beside a digest is dropped (the digest wins).
 */
export function parseDigestReference(text: string): DigestReference {
  const ref = parseReference(text);
  if (ref.digest === undefined && isLayoutReference(ref)) {
    throw new FerryError(
      "tag_reference",
      `"${text}" names no digest: Ferry acts only on an immutable digest. The layout's index.json lists the digests; pass ${LAYOUT_PREFIX}${layoutDirectory(ref)}@sha256:…`,
    );
  }
  if (ref.digest === undefined) {
    const name = `${ref.registry}/${ref.repository}`;
    const shown = ref.tag === undefined ? name : `${name}:${ref.tag}`;
    // A loopback registry is usually plain http (Ferry allows that only there), where both tools
    // need to be told so, or the command the hint gives fails on its TLS handshake.
    const plain = isLoopbackRegistry(ref.registry);
    const crane = `crane digest ${plain ? "--insecure " : ""}${shown}`;
    const skopeo = `skopeo inspect ${plain ? "--tls-verify=false " : ""}--format '{{.Digest}}' docker://${shown}`;
    throw new FerryError(
      "tag_reference",
      `"${text}" names ${ref.tag === undefined ? "no digest" : `the tag "${ref.tag}"`}, and tags can move: Ferry acts only on an immutable digest. Find the digest with \`${crane}\` or \`${skopeo}\`, then pass ${name}@sha256:…`,
    );
  }
  return { registry: ref.registry, repository: ref.repository, digest: ref.digest };
}

/** Parses a repository reference (`host[:port]/path`); a tag or digest there is refused. */
export function parseRepositoryReference(text: string): RepositoryReference {
  const ref = parseReference(text);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new FerryError(
      "bad_request",
      `"${text}" should name a repository only (e.g. ${ref.registry}/${ref.repository}): the digest is kept from the source`,
    );
  }
  return { registry: ref.registry, repository: ref.repository };
}

/** Formats a reference back into its canonical text. */
export function formatReference(ref: ImageReference): string {
  const tag = ref.tag === undefined ? "" : `:${ref.tag}`;
  const digest = ref.digest === undefined ? "" : `@${ref.digest}`;
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

/** Whether a registry host (`host[:port]`) is a loopback address. */
function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith("[")
    ? registry.slice(0, registry.indexOf("]") + 1)
    : registry.split(":")[0]!;
  return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}
