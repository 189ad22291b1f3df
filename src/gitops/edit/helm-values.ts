import { type Source, selectDocument } from "./document.ts";
import type { EditOp } from "./ops.ts";
import { formatReference, type Pinned, readReference } from "./reference.ts";
import { Refusal } from "./refusal.ts";
import { locateOptional, locateOrRefuse, setOp, textAt } from "./scalar.ts";
import type { GitopsTarget } from "./types.ts";

type HelmTarget = GitopsTarget & { kind: "helm-values" };

/** A target names one reference path, or a digest path (with an optional repository path). */
function checkShape(source: Source, target: HelmTarget): void {
  const separate = target.repository !== undefined || target.digest !== undefined;
  if (target.reference !== undefined && separate) {
    throw new Refusal(
      "gitops_path_missing",
      `${source.file}: the helm-values target names both \`reference\` and \`repository\`/\`digest\`; keep one form in the config`,
    );
  }
  if (target.reference === undefined && target.digest === undefined) {
    throw new Refusal(
      "gitops_path_missing",
      `${source.file}: the helm-values target names neither \`reference\` nor \`digest\`; add the path that holds the image's digest to the config`,
    );
  }
}

/** What the values pin: the reference's repository and digest, or the separate values. */
export function pinnedHelm(source: Source, target: HelmTarget): Pinned {
  checkShape(source, target);
  const doc = selectDocument(source, undefined);
  if (target.reference !== undefined) {
    const text = textAt(locateOrRefuse(source, doc, target.reference, "reference"));
    return text === undefined ? {} : readReference(text);
  }
  const pinned: Pinned = {};
  if (target.repository !== undefined) {
    const repository = textAt(locateOrRefuse(source, doc, target.repository, "repository"));
    if (repository !== undefined) pinned.repository = repository;
  }
  const digest = textAt(locateOrRefuse(source, doc, target.digest!, "digest"));
  if (digest !== undefined) pinned.digest = digest;
  return pinned;
}

/**
 * Writes `repo@digest` at the reference path, or the repository and digest at their own paths (each
 * must exist: Ferry does not add keys to values files). The tag path, when given, is cleared to `""`
 * (absent or already empty: left alone); when not given, the tag is not touched.
 */
export function planHelm(source: Source, target: HelmTarget, repository: string, digest: string): EditOp[] {
  checkShape(source, target);
  const doc = selectDocument(source, undefined);
  const ops: EditOp[] = [];
  if (target.reference !== undefined) {
    const located = locateOrRefuse(source, doc, target.reference, "reference");
    ops.push(...setOp(source, doc, located, formatReference(repository, digest), target.reference));
  } else {
    if (target.repository !== undefined) {
      const located = locateOrRefuse(source, doc, target.repository, "repository");
      ops.push(...setOp(source, doc, located, repository, target.repository));
    }
    const located = locateOrRefuse(source, doc, target.digest!, "digest");
    ops.push(...setOp(source, doc, located, digest, target.digest!));
  }
  if (target.tag !== undefined) {
    const tag = locateOptional(source, doc, target.tag, "tag");
    if (textAt(tag) !== undefined) ops.push(...setOp(source, doc, tag!, "", target.tag));
  }
  return ops;
}

/** Whether the values already say everything the target writes. */
export function writesRepositoryHelm(target: HelmTarget): boolean {
  return target.reference !== undefined || target.repository !== undefined;
}
