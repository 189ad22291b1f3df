import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isScalar,
  isSeq,
  type Node,
  type ParsedNode,
  parseAllDocuments,
  visit,
  type YAMLMap,
  type YAMLSeq,
} from "yaml";
import { type FieldSegment, formatFieldPath } from "../../common/field-path.ts";
import { Refusal } from "./refusal.ts";

/** A parsed file: its documents with their source tokens kept (the edit renders scalars from them). */
export interface Source {
  readonly file: string;
  readonly text: string;
  readonly docs: Document.Parsed[];
}

/** Parses every document of a file, or refuses with the first error (line and column). */
export function parseSource(file: string, text: string): Source {
  const parsed = parseAllDocuments(text, { keepSourceTokens: true, prettyErrors: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const firstLine = error.message.split("\n")[0]!.replace(/:$/, "");
      throw new Refusal(
        "gitops_parse_failed",
        `${file}: not valid YAML: ${firstLine}; fix the file in Git, then promote again`,
      );
    }
  }
  return { file, text, docs };
}

/** Documents that hold something: a trailing `---` or a comment-only stream does not count. */
function contentDocs(source: Source): number[] {
  return source.docs.flatMap((doc, i) => (doc.contents === null ? [] : [i]));
}

/** The selector of a multi-document file, as `yaml` targets give it. */
export interface DocumentSelector {
  kind?: string;
  name?: string;
}

/**
 * Picks the one document a target edits: with no selector, the file's only document; with one, the
 * documents whose `kind` and `metadata.name` match. Zero or several is a refusal naming the selector.
 */
export function selectDocument(source: Source, selector: DocumentSelector | undefined): number {
  const candidates = contentDocs(source);
  const wanted = describeSelector(selector);
  const matching =
    selector && (selector.kind !== undefined || selector.name !== undefined)
      ? candidates.filter((i) => matchesSelector(source.docs[i]!, selector))
      : candidates;
  if (matching.length === 1) return matching[0]!;
  if (matching.length === 0) {
    if (candidates.length === 0) {
      throw new Refusal("gitops_path_missing", `${source.file}: the file holds no YAML document; add one`);
    }
    throw new Refusal(
      "gitops_path_missing",
      `${source.file}: no document with ${wanted} among its ${candidates.length} (found ${listDocuments(source, candidates)}); fix the target's document selector or the file`,
    );
  }
  throw new Refusal(
    "gitops_ambiguous",
    selector && wanted !== "no selector"
      ? `${source.file}: ${matching.length} documents match ${wanted} (${listDocuments(source, matching)}); add \`kind\` and \`name\` to the target's document selector so exactly one matches`
      : `${source.file}: the file holds ${matching.length} documents (${listDocuments(source, matching)}); select one with the target's \`document: {kind, name}\``,
  );
}

function matchesSelector(doc: Document.Parsed, selector: DocumentSelector): boolean {
  if (selector.kind !== undefined && scalarText(doc.get("kind", true)) !== selector.kind) return false;
  if (selector.name !== undefined && scalarText(doc.getIn(["metadata", "name"], true)) !== selector.name) {
    return false;
  }
  return true;
}

function describeSelector(selector: DocumentSelector | undefined): string {
  const parts: string[] = [];
  if (selector?.kind !== undefined) parts.push(`kind ${JSON.stringify(selector.kind)}`);
  if (selector?.name !== undefined) parts.push(`metadata.name ${JSON.stringify(selector.name)}`);
  return parts.length === 0 ? "no selector" : parts.join(" and ");
}

function listDocuments(source: Source, indices: number[]): string {
  const shown = indices.slice(0, 5).map((i) => {
    const doc = source.docs[i]!;
    const kind = scalarText(doc.get("kind", true)) ?? "?";
    const name = scalarText(doc.getIn(["metadata", "name"], true)) ?? "?";
    return `${kind}/${name}`;
  });
  return indices.length > 5 ? `${shown.join(", ")}, …` : shown.join(", ");
}

/** The text of a scalar node (numbers and booleans as written), or undefined for anything else. */
export function scalarText(node: unknown): string | undefined {
  if (!isScalar(node) || node.value === null || node.value === undefined) return undefined;
  return String(node.value);
}

/** A node reached by a path, with the item indices that lead to it (see proof.ts). */
export interface Located {
  node: ParsedNode | null;
  /** Item index in each collection from the document root down to `node`. */
  indices: number[];
  /** The collections walked through, root first (not `node` itself). */
  parents: ParsedNode[];
}

/** Where a path stops short: the segment that found nothing, and the collection it looked in. */
export interface Missing {
  missing: true;
  /** Index of the segment that found nothing. */
  at: number;
  /** The collection it looked in (a map for a key, a list for a selector), or the wrong node. */
  container: ParsedNode | null;
  reason: "absent" | "not_a_map" | "not_a_list";
}

/**
 * Follows a path from a document's root. Refuses through an alias (the edit would change the
 * anchored node and every other place that uses it) and when a list selector matches several items.
 */
export function locate(
  source: Source,
  doc: number,
  segments: readonly FieldSegment[],
  label: string,
): Located | Missing {
  const document = source.docs[doc]!;
  let node = document.contents as ParsedNode | null;
  const located: Located = { node, indices: [], parents: [] };
  for (let at = 0; at < segments.length; at++) {
    const segment = segments[at]!;
    if (isAlias(node)) throw throughAlias(source, label, segments.slice(0, at), node.source);
    const here = { missing: true as const, at, container: node };
    let index = -1;
    if (segment.type === "key") {
      if (!isMap(node)) return { ...here, reason: "not_a_map" };
      index = node.items.findIndex((pair) => scalarText(pair.key) === segment.key);
    } else {
      if (!isSeq(node)) return { ...here, reason: "not_a_list" };
      if (segment.type === "index") index = segment.index < node.items.length ? segment.index : -1;
      else {
        const matches = node.items.flatMap((item, i) =>
          matchesItem(document, item as ParsedNode, segment.field, segment.value) ? [i] : [],
        );
        if (matches.length > 1) {
          throw new Refusal(
            "gitops_ambiguous",
            `${source.file}: ${label}: ${matches.length} items of ${formatFieldPath(segments.slice(0, at))} match [${segment.field}=${segment.value}] (items ${matches.join(", ")}); make the selector match exactly one item`,
          );
        }
        index = matches[0] ?? -1;
      }
    }
    if (index < 0) return { ...here, reason: "absent" };
    const container: ParsedNode = node;
    located.parents.push(container);
    located.indices.push(index);
    node = (
      isMap(container) ? container.items[index]!.value : (container as YAMLSeq).items[index]
    ) as ParsedNode | null;
    located.node = node;
  }
  if (isAlias(node)) throw throughAlias(source, label, segments, node.source);
  return located;
}

function matchesItem(document: Document.Parsed, item: ParsedNode, field: string, value: string): boolean {
  const map = isAlias(item) ? item.resolve(document) : item;
  if (!isMap(map)) return false;
  return (map as YAMLMap).items.some(
    (pair) => scalarText(pair.key) === field && scalarText(pair.value) === value,
  );
}

function throughAlias(
  source: Source,
  label: string,
  prefix: readonly FieldSegment[],
  alias: string,
): Refusal {
  return new Refusal(
    "gitops_unsafe_edit",
    `${source.file}: ${label}: ${formatFieldPath(prefix)} is the alias *${alias}; editing through it would change the anchored node &${alias} and every other place that uses it; point the target at the anchor, or write the value in place of the alias`,
  );
}

/**
 * Refuses to edit inside a node whose anchor an alias uses: the change would silently reach the
 * alias too. Anchors nobody refers to are harmless and are kept.
 */
export function assertNotAliased(source: Source, doc: number, located: Located, label: string): void {
  const used = new Set<string>();
  visit(source.docs[doc]!, {
    Alias(_, alias) {
      used.add(alias.source);
    },
  });
  if (used.size === 0) return;
  for (const node of [...located.parents, located.node]) {
    const anchor = (node as Node | null)?.anchor;
    if (anchor !== undefined && used.has(anchor)) {
      throw new Refusal(
        "gitops_unsafe_edit",
        `${source.file}: ${label} lies in the node anchored &${anchor}, which an alias *${anchor} also uses; the edit would change both places; replace the alias with its own copy of the node, then promote again`,
      );
    }
  }
}

/** True when any collection on the way is in flow style (`{…}` or `[…]`): scalars render differently there. */
export function inFlow(located: Located): boolean {
  return located.parents.some((node) => isCollection(node) && node.flow === true);
}

/** A message naming where a path stopped and how to fix it. */
export function describeMissing(
  source: Source,
  segments: readonly FieldSegment[],
  missing: Missing,
  label: string,
): string {
  const prefix = formatFieldPath(segments.slice(0, missing.at));
  const segment = segments[missing.at]!;
  const where = `${source.file}: ${label}`;
  if (missing.reason === "not_a_map") {
    return `${where}: ${prefix} is not a map, so it has no key ${JSON.stringify(segment.type === "key" ? segment.key : "")}; fix the path in the target`;
  }
  if (missing.reason === "not_a_list") {
    return `${where}: ${prefix} is not a list, so ${formatFieldPath([segment])} selects nothing; use a key (\`.name\`) or fix the path`;
  }
  const container = missing.container;
  if (segment.type === "key" && isMap(container)) {
    const keys = container.items.map((pair) => scalarText(pair.key) ?? "?");
    const merge = keys.includes("<<") ? " (a `<<` merge key is not followed: write the key in this map)" : "";
    return `${where}: no key ${JSON.stringify(segment.key)} in ${prefix} (its keys: ${keys.slice(0, 12).join(", ") || "none"})${merge}; add it to the file or fix the path in the target`;
  }
  if (isSeq(container)) {
    return `${where}: no item ${formatFieldPath([segment])} in the list ${prefix} (${container.items.length} items); add it to the file or fix the selector`;
  }
  return `${where}: ${prefix} is empty; add the value to the file or fix the path in the target`;
}
