import { digestTag, sha256 } from "./digest.ts";
import type { Descriptor } from "./manifest.ts";
import type { ArtifactReader, FetchedManifest } from "./ports.ts";

/** The kinds of cosign's legacy attachment tags. */
export const LEGACY_KINDS = ["sig", "att", "sbom"] as const;
export type LegacyKind = (typeof LEGACY_KINDS)[number];

/** cosign's legacy tag for an attachment of `digest`: `sha256-<hex>.sig`, `.att` or `.sbom`. */
export function legacyTag(digest: string, kind: LegacyKind): string {
  return `${digestTag(digest)}.${kind}`;
}

/** The attachments cosign stored under legacy tags for one digest. */
export type LegacyAttachments = Partial<Record<LegacyKind, FetchedManifest>>;

/**
 * Looks up cosign's `.sig`, `.att` and `.sbom` tags of `digest` (in parallel) and returns the
 * manifests found, verified. `kinds` narrows the lookup.
 */
export async function findLegacyAttachments(
  reader: ArtifactReader,
  digest: string,
  kinds: readonly LegacyKind[] = LEGACY_KINDS,
): Promise<LegacyAttachments> {
  const found = await Promise.all(
    kinds.map(async (kind) => [kind, await reader.findManifest(legacyTag(digest, kind))] as const),
  );
  const out: LegacyAttachments = {};
  for (const [kind, manifest] of found) if (manifest !== undefined) out[kind] = manifest;
  return out;
}

function layerKey(layer: Descriptor): string {
  const annotations = Object.entries(layer.annotations ?? {}).sort(([x], [y]) =>
    x < y ? -1 : x > y ? 1 : 0,
  );
  return `${layer.digest} ${JSON.stringify(annotations)}`;
}

/** A merged legacy attachment image: a new config blob and the manifest that lists it. */
export interface MergedAttachment {
  config: { descriptor: Descriptor; bytes: Uint8Array };
  manifest: Uint8Array;
  mediaType: string;
}

/**
 * Merges the layers (one per signature or attestation) of `incoming` into `existing`, the way cosign
 * appends to a `.sig`/`.att` image: existing layers first, then those not already there (same digest
 * and annotations), and the
 * config's `rootfs.diff_ids` extended to match (cosign's layers are uncompressed, so a diff id is the
 * layer digest). Returns undefined when `existing` already holds every incoming layer, or when either
 * is not an image manifest with a JSON config that can be extended.
 */
export function mergeLegacyAttachment(
  existing: FetchedManifest,
  existingConfig: Uint8Array,
  incoming: FetchedManifest,
): MergedAttachment | undefined {
  if (existing.manifest.kind !== "image" || incoming.manifest.kind !== "image") return undefined;
  // Signatures by different keys over one payload share a layer digest and differ only in their
  // annotations (the signature itself), so a layer is identified by both.
  const have = new Set(existing.manifest.value.layers.map(layerKey));
  const added = incoming.manifest.value.layers.filter((l) => !have.has(layerKey(l)));
  if (added.length === 0) return undefined;
  let config: { rootfs?: { diff_ids?: unknown } };
  try {
    config = JSON.parse(new TextDecoder().decode(existingConfig)) as typeof config;
  } catch {
    return undefined;
  }
  if (!Array.isArray(config.rootfs?.diff_ids)) return undefined;
  const newConfig = {
    ...config,
    rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids, ...added.map((l) => l.digest)] },
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(newConfig));
  const configDescriptor: Descriptor = {
    ...existing.manifest.value.config,
    digest: sha256(configBytes),
    size: configBytes.byteLength,
  };
  const manifest = {
    ...existing.manifest.value,
    config: configDescriptor,
    layers: [...existing.manifest.value.layers, ...added],
  };
  return {
    config: { descriptor: configDescriptor, bytes: configBytes },
    manifest: new TextEncoder().encode(JSON.stringify(manifest)),
    mediaType: existing.manifest.mediaType,
  };
}
