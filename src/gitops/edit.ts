/**
 * The GitOps editing core: pins a digest in a kustomization, a Helm values file or any YAML file,
 * with a minimal diff that is proved before it is returned (see `edit/proof.ts` and
 * docs/gitops.md#editing). Pure: text in, text out; the git side reads and writes the files.
 */

import { isDigest } from "../registry/digest.ts";
import { parseRepositoryReference } from "../registry/reference.ts";
import { parseSource, type Source } from "./edit/document.ts";
import { pinnedHelm, planHelm, writesRepositoryHelm } from "./edit/helm-values.ts";
import { pinnedKustomize, planKustomize } from "./edit/kustomize.ts";
import { type EditOp, render } from "./edit/ops.ts";
import { prove } from "./edit/proof.ts";
import type { Pinned } from "./edit/reference.ts";
import { Refusal } from "./edit/refusal.ts";
import type { EditInput, EditResult, GitopsTarget } from "./edit/types.ts";
import { pinnedYaml, planYaml } from "./edit/yaml-field.ts";

export type { FieldPathResult, FieldSegment } from "../common/field-path.ts";
export { parseFieldPath } from "../common/field-path.ts";
export type { EditInput, EditResult, GitopsTarget } from "./edit/types.ts";

/**
 * Pins `input.digest` (and `input.repository`) in `input.text` as the target says. `changed` only
 * when the proof held: the edited text re-parses to the original with exactly the intended scalars
 * changed, and only their lines differ. `unchanged` when the file already pins this repository and
 * digest. Otherwise `refused` with a message naming the file, the YAML path and the fix.
 * Throws only on a caller's bug: a digest that is not `sha256:…` or a repository that is not `host/path`.
 */
export function applyEdit(input: EditInput): EditResult {
  if (!isDigest(input.digest))
    throw new TypeError(`applyEdit: not a digest: ${JSON.stringify(input.digest)}`);
  try {
    parseRepositoryReference(input.repository);
  } catch (cause) {
    throw new TypeError(`applyEdit: not a host/path repository: ${JSON.stringify(input.repository)}`, {
      cause,
    });
  }
  try {
    const source = parseSource(input.target.path, input.text);
    const pinned = pinnedOf(source, input.target);
    const writesRepository = writesRepositoryOf(input.target);
    if (pinned.digest === input.digest && (!writesRepository || pinned.repository === input.repository)) {
      return { status: "unchanged" };
    }
    const ops = planOf(source, input);
    if (ops.length === 0) return { status: "unchanged" };
    const rendered = render(source, ops);
    const changedLines = prove(source, ops, rendered.text, rendered.allowance);
    return { status: "changed", text: rendered.text, changedLines };
  } catch (error) {
    if (error instanceof Refusal) return { status: "refused", reason: error.reason, message: error.message };
    throw error;
  }
}

/**
 * What the file pins now for this target (for drift). Undefined when the target's path is absent,
 * or the file does not parse or is ambiguous for it (`applyEdit` says why).
 */
export function readPinned(
  text: string,
  target: GitopsTarget,
): { repository?: string; digest?: string } | undefined {
  try {
    return pinnedOf(parseSource(target.path, text), target);
  } catch (error) {
    if (error instanceof Refusal) return undefined;
    throw error;
  }
}

function pinnedOf(source: Source, target: GitopsTarget): Pinned {
  switch (target.kind) {
    case "kustomize":
      return pinnedKustomize(source, target);
    case "helm-values":
      return pinnedHelm(source, target);
    case "yaml":
      return pinnedYaml(source, target);
  }
}

function writesRepositoryOf(target: GitopsTarget): boolean {
  switch (target.kind) {
    case "kustomize":
      return true;
    case "helm-values":
      return writesRepositoryHelm(target);
    case "yaml":
      return target.value !== "digest";
  }
}

function planOf(source: Source, input: EditInput): EditOp[] {
  const { target, repository, digest } = input;
  switch (target.kind) {
    case "kustomize":
      return planKustomize(source, target, repository, digest);
    case "helm-values":
      return planHelm(source, target, repository, digest);
    case "yaml":
      return planYaml(source, target, repository, digest);
  }
}
