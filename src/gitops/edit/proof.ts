import { type Document, isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments } from "yaml";
import type { Source } from "./document.ts";
import { type EditOp, type LineAllowance, LineIndex } from "./ops.ts";
import { Refusal } from "./refusal.ts";

/**
 * A node as the proof compares it: everything YAML can tell apart (value and its type, scalar style,
 * tag, anchor, comments, blank line before, flow style, order of keys), and nothing of its position.
 */
type Canon =
  | { k: "null" }
  | { k: "scalar"; v: string; t: string; style: string; meta: Meta }
  | { k: "alias"; source: string; meta: Meta }
  | { k: "map" | "seq"; flow: boolean; items: Canon[]; meta: Meta }
  | { k: "pair"; key: Canon; value: Canon };

interface Meta {
  tag: string | null;
  anchor: string | null;
  before: string | null;
  after: string | null;
  space: boolean;
}

function meta(node: {
  tag?: string;
  anchor?: string;
  commentBefore?: string | null;
  comment?: string | null;
  spaceBefore?: boolean;
}): Meta {
  return {
    tag: node.tag ?? null,
    anchor: node.anchor ?? null,
    before: node.commentBefore ?? null,
    after: node.comment ?? null,
    space: node.spaceBefore === true,
  };
}

function canon(node: unknown): Canon {
  if (node === null || node === undefined) return { k: "null" };
  if (isScalar(node)) {
    const v = node.value;
    return {
      k: "scalar",
      v: String(v),
      t: v === null ? "null" : typeof v,
      style: node.type ?? "PLAIN",
      meta: meta(node),
    };
  }
  if (isAlias(node)) return { k: "alias", source: node.source, meta: meta(node) };
  if (isPair(node)) return { k: "pair", key: canon(node.key), value: canon(node.value) };
  if (isMap(node) || isSeq(node)) {
    return {
      k: isMap(node) ? "map" : "seq",
      flow: node.flow === true,
      items: node.items.map((item) => canon(item)),
      meta: meta(node),
    };
  }
  throw new Error("unknown YAML node");
}

function canonDocument(doc: Document.Parsed): Canon {
  // A document is a one-item sequence whose meta holds the document's own comments.
  return {
    k: "seq",
    flow: false,
    items: [canon(doc.contents)],
    meta: {
      tag: null,
      anchor: null,
      before: doc.commentBefore ?? null,
      after: doc.comment ?? null,
      space: false,
    },
  };
}

function plainScalar(value: string): Canon {
  return {
    k: "scalar",
    v: value,
    t: "string",
    style: "PLAIN",
    meta: { tag: null, anchor: null, before: null, after: null, space: false },
  };
}

/** The node the indices lead to, below a document's canon (whose item 0 is the root). */
function reach(root: Canon, indices: readonly number[]): Canon {
  let node = (root as { items: Canon[] }).items[0]!;
  for (const index of indices) {
    const item = (node as { items: Canon[] }).items[index]!;
    node = item.k === "pair" ? item.value : item;
  }
  return node;
}

/** The original's canon with the ops applied: what the edited text must parse to, exactly. */
function expected(source: Source, ops: readonly EditOp[]): Canon[] {
  const docs = source.docs.map(canonDocument);
  for (const op of ops) {
    if (op.op !== "set") continue;
    const node = reach(docs[op.doc]!, op.indices) as Canon & { k: "scalar" };
    Object.assign(node, { v: op.value, t: "string", style: op.type });
  }
  // Structural changes last, per map, so every op's indices still name original items.
  const maps = new Map<Canon, { removed: Set<number>; inserted: Map<number, Canon[]> }>();
  for (const op of ops) {
    if (op.op === "set") continue;
    const map = reach(docs[op.doc]!, op.indices);
    const change = maps.get(map) ?? { removed: new Set(), inserted: new Map() };
    maps.set(map, change);
    if (op.op === "remove") change.removed.add(op.index);
    else {
      const pairs = op.entries.map(
        (e): Canon => ({ k: "pair", key: plainScalar(e.key), value: plainScalar(e.value) }),
      );
      change.inserted.set(op.after, [...(change.inserted.get(op.after) ?? []), ...pairs]);
    }
  }
  for (const [map, change] of maps) {
    const items = (map as { items: Canon[] }).items;
    (map as { items: Canon[] }).items = items.flatMap((item, i) => [
      ...(change.removed.has(i) ? [] : [item]),
      ...(change.inserted.get(i) ?? []),
    ]);
  }
  return docs;
}

/** The first place two canons differ, as a readable path, or undefined when they are equal. */
function firstDifference(a: Canon, b: Canon, path: string): string | undefined {
  if (a.k !== b.k) return `${path} (a ${b.k} where a ${a.k} was expected)`;
  if (a.k === "pair" && b.k === "pair") {
    return firstDifference(a.key, b.key, `${path}(key)`) ?? firstDifference(a.value, b.value, path);
  }
  if ((a.k === "map" || a.k === "seq") && (b.k === "map" || b.k === "seq")) {
    if (a.items.length !== b.items.length)
      return `${path} (${b.items.length} items where ${a.items.length} were expected)`;
    for (let i = 0; i < a.items.length; i++) {
      const item = a.items[i]!;
      const label = item.k === "pair" && item.key.k === "scalar" ? `${path}.${item.key.v}` : `${path}[${i}]`;
      const diff = firstDifference(item, b.items[i]!, label);
      if (diff) return diff;
    }
  }
  const { items: _a, ...restA } = a as { items?: unknown };
  const { items: _b, ...restB } = b as { items?: unknown };
  if (JSON.stringify(restA) !== JSON.stringify(restB))
    return `${path} (its value, style, tag, anchor or comments)`;
  return undefined;
}

/**
 * Checks line by line that the edited text differs from the original only where allowed, and that
 * new and changed lines end like their neighbours (CRLF stays CRLF). Returns the 1-based original
 * lines that differ.
 */
function proveLines(original: string, edited: string, allowance: LineAllowance): number[] | string {
  const before = original.split("\n");
  const after = edited.split("\n");
  const changed: number[] = [];
  const crlf = (line: string) => line.endsWith("\r");
  let j = 0;
  const take = (count: number, like: string): string | undefined => {
    for (let n = 0; n < count; n++, j++) {
      const line = after[j];
      if (line === undefined) return "the edited text ends early";
      if (crlf(line) !== crlf(like) && j < after.length - 1)
        return `new line ${j + 1} changes the line ending`;
    }
    return undefined;
  };
  const lead = take(allowance.inserted.get(-1) ?? 0, before[0] ?? "");
  if (lead) return lead;
  for (let i = 0; i < before.length; i++) {
    const line = before[i]!;
    if (allowance.removed.has(i)) {
      changed.push(i + 1);
    } else {
      const now = after[j];
      if (now === undefined)
        return `the edited file has ${after.length} lines, too few to keep line ${i + 1}`;
      if (now !== line) {
        if (!allowance.changed.has(i)) return `line ${i + 1} changed, and nothing there was to be edited`;
        if (crlf(now) !== crlf(line) && i < before.length - 1) return `line ${i + 1} changes its line ending`;
        changed.push(i + 1);
      }
      j++;
    }
    const problem = take(allowance.inserted.get(i) ?? 0, line);
    if (problem) return problem;
  }
  if (j !== after.length) return `the edited file has ${after.length - j} lines more than the edit adds`;
  return changed;
}

/** Names an edited scalar written over several lines: the usual reason the lines do not line up. */
function spanHint(source: Source, ops: readonly EditOp[]): string {
  const index = new LineIndex(source.text);
  for (const op of ops) {
    if (op.op !== "set" || !op.node.range) continue;
    const first = index.lineOf(op.node.range[0]);
    const last = index.lineOf(op.node.range[1]);
    if (last > first) return `; ${op.label} spans lines ${first + 1}-${last + 1}`;
  }
  return "";
}

/**
 * The minimal-diff proof. Re-parses the edited text and requires (1) every line byte-equal to the
 * original except those the ops own (the edited scalars' lines, a removed key's lines, the new keys'
 * lines), and (2) the parsed result equal to the original node for node, with exactly the ops
 * applied: the same values, styles, tags, anchors, comments and key order everywhere else.
 * Refuses with `gitops_unsafe_edit` otherwise; returns the 1-based original lines that differ.
 */
export function prove(
  source: Source,
  ops: readonly EditOp[],
  edited: string,
  allowance: LineAllowance,
): number[] {
  const labels = [...new Set(ops.map((op) => op.label))].join(", ");
  const refuse = (detail: string) =>
    new Refusal(
      "gitops_unsafe_edit",
      `${source.file}: editing ${labels} would not be a minimal diff (${detail}); Ferry wrote nothing. Put the value on a line of its own as a one-line plain or quoted scalar, or make this edit by hand once`,
    );
  const lines = proveLines(source.text, edited, allowance);
  if (typeof lines === "string") throw refuse(`${lines}${spanHint(source, ops)}`);
  const parsed = parseAllDocuments(edited);
  const docs = Array.isArray(parsed) ? parsed : [];
  const broken = docs.find((doc) => doc.errors.length > 0);
  if (broken)
    throw refuse(
      `the edited file does not parse: ${broken.errors[0]!.message.split("\n")[0]!.replace(/:$/, "")}`,
    );
  const want = expected(source, ops);
  if (docs.length !== want.length)
    throw refuse(`${docs.length} documents where ${want.length} were expected`);
  for (let i = 0; i < want.length; i++) {
    const a = want[i] as Canon & { k: "seq" };
    const b = canonDocument(docs[i]!) as Canon & { k: "seq" };
    const where = want.length > 1 ? `document ${i + 1}` : "the document";
    if (JSON.stringify(a.meta) !== JSON.stringify(b.meta)) throw refuse(`the comments of ${where} changed`);
    const diff = firstDifference(a.items[0]!, b.items[0]!, "");
    if (diff !== undefined) throw refuse(`${where} differs at ${diff.replace(/^\./, "") || "its root"}`);
  }
  return lines;
}
