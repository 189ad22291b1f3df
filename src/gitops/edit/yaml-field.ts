import { type Source, selectDocument } from "./document.ts";
import type { EditOp } from "./ops.ts";
import { formatReference, type Pinned, readReference } from "./reference.ts";
import { locateOrRefuse, setOp, textAt } from "./scalar.ts";
import type { GitopsTarget } from "./types.ts";

type YamlTarget = GitopsTarget & { kind: "yaml" };

function where(source: Source, target: YamlTarget) {
  const doc = selectDocument(source, target.document);
  return { doc, located: locateOrRefuse(source, doc, target.field, "field") };
}

/** What the field pins: a reference's repository and digest, or the digest alone. */
export function pinnedYaml(source: Source, target: YamlTarget): Pinned {
  const text = textAt(where(source, target).located);
  if (text === undefined) return {};
  return target.value === "digest" ? { digest: text } : readReference(text);
}

/** Writes `repo@digest` (or the digest alone) into the field of the selected document. */
export function planYaml(source: Source, target: YamlTarget, repository: string, digest: string): EditOp[] {
  const { doc, located } = where(source, target);
  const value = target.value === "digest" ? digest : formatReference(repository, digest);
  return setOp(source, doc, located, value, target.field);
}
