import { isMap, isSeq, type Pair, type ParsedNode, type YAMLMap } from "yaml";
import {
  assertNotAliased,
  type Located,
  locate,
  type Source,
  scalarText,
  selectDocument,
} from "./document.ts";
import type { EditOp } from "./ops.ts";
import type { Pinned } from "./reference.ts";
import { Refusal } from "./refusal.ts";
import { setOp } from "./scalar.ts";
import type { GitopsTarget } from "./types.ts";

type KustomizeTarget = GitopsTarget & { kind: "kustomize" };

interface Entry {
  doc: number;
  located: Located;
  map: YAMLMap.Parsed;
  label: string;
}

/** The one `images:` entry whose `name` is the target's image. */
function findEntry(source: Source, target: KustomizeTarget): Entry {
  const doc = selectDocument(source, undefined);
  const label = `images[name=${target.image}]`;
  const images = locate(source, doc, [{ type: "key", key: "images" }], "images");
  if ("missing" in images || !isSeq(images.node)) {
    throw new Refusal(
      "gitops_path_missing",
      `${source.file}: ${label}: the kustomization has no \`images:\` list; add \`images: [{name: ${target.image}}]\` to it, or point the target at the right file`,
    );
  }
  const seq = images.node;
  const matches = seq.items.flatMap((item, i) =>
    isMap(item) &&
    item.items.some((p) => scalarText(p.key) === "name" && scalarText(p.value) === target.image)
      ? [i]
      : [],
  );
  if (matches.length > 1) {
    throw new Refusal(
      "gitops_ambiguous",
      `${source.file}: ${label}: ${matches.length} entries of \`images:\` are named ${JSON.stringify(target.image)} (items ${matches.join(", ")}); keep one of them`,
    );
  }
  const index = matches[0];
  if (index === undefined) {
    const names = seq.items.map((item) => (isMap(item) ? (scalarText(item.get("name", true)) ?? "?") : "?"));
    throw new Refusal(
      "gitops_path_missing",
      `${source.file}: ${label}: no \`images:\` entry is named ${JSON.stringify(target.image)} (names: ${names.join(", ") || "none"}); add \`- name: ${target.image}\` to \`images:\`, or fix the target's image`,
    );
  }
  const map = seq.items[index] as YAMLMap.Parsed;
  const located: Located = {
    node: map,
    indices: [...images.indices, index],
    parents: [...images.parents, seq],
  };
  return { doc, located, map, label };
}

function field(entry: Entry, key: string): { index: number; located: Located } | undefined {
  const index = entry.map.items.findIndex((pair) => scalarText(pair.key) === key);
  if (index < 0) return undefined;
  const pair = entry.map.items[index] as Pair<ParsedNode, ParsedNode | null>;
  return {
    index,
    located: {
      node: pair.value,
      indices: [...entry.located.indices, index],
      parents: [...entry.located.parents, entry.map],
    },
  };
}

/** What the entry pins: `newName` (or `name` without one) and `digest`. */
export function pinnedKustomize(source: Source, target: KustomizeTarget): Pinned {
  const entry = findEntry(source, target);
  const pinned: Pinned = {};
  const repository = scalarText(field(entry, "newName")?.located.node) ?? target.image;
  if (repository !== "") pinned.repository = repository;
  const digest = scalarText(field(entry, "digest")?.located.node);
  if (digest !== undefined && digest !== "") pinned.digest = digest;
  return pinned;
}

/**
 * Sets `newName` and `digest` in place, adds the missing ones right after `newName` (or `name`) at
 * the same indentation, and removes `newTag` unless `keepTag`.
 */
export function planKustomize(
  source: Source,
  target: KustomizeTarget,
  repository: string,
  digest: string,
): EditOp[] {
  const entry = findEntry(source, target);
  assertNotAliased(source, entry.doc, entry.located, entry.label);
  const ops: EditOp[] = [];
  const entries: { key: string; value: string }[] = [];
  const newName = field(entry, "newName");
  if (newName) ops.push(...setOp(source, entry.doc, newName.located, repository, `${entry.label}.newName`));
  else if (repository !== target.image) entries.push({ key: "newName", value: repository });
  const current = field(entry, "digest");
  if (current) ops.push(...setOp(source, entry.doc, current.located, digest, `${entry.label}.digest`));
  else entries.push({ key: "digest", value: digest });
  if (entries.length > 0) {
    const after = newName?.index ?? field(entry, "name")!.index;
    ops.push({
      op: "insert",
      doc: entry.doc,
      indices: entry.located.indices,
      map: entry.map,
      after,
      entries,
      label: `${entry.label}.${entries.map((e) => e.key).join("/")}`,
    });
  }
  const tag = field(entry, "newTag");
  if (tag && !target.keepTag) {
    ops.push({
      op: "remove",
      doc: entry.doc,
      indices: entry.located.indices,
      map: entry.map,
      index: tag.index,
      label: `${entry.label}.newTag`,
    });
  }
  return ops;
}
