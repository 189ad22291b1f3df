import { CST, isScalar, type Pair, type ParsedNode, type Scalar, type YAMLMap } from "yaml";
import type { Source } from "./document.ts";
import { Refusal } from "./refusal.ts";

/**
 * One intended change, stated on the original document: what the proof expects to see changed and
 * nothing else. `indices` lead from the document root to the node (see `Located`).
 */
export type EditOp =
  | {
      op: "set";
      doc: number;
      indices: number[];
      node: Scalar;
      value: string;
      type: Scalar.Type;
      inFlow: boolean;
      label: string;
    }
  | { op: "remove"; doc: number; indices: number[]; map: YAMLMap; index: number; label: string }
  | {
      op: "insert";
      doc: number;
      indices: number[];
      map: YAMLMap;
      /** Index of the pair the new ones follow. */
      after: number;
      entries: { key: string; value: string }[];
      label: string;
    };

/** A replacement of `text.slice(start, end)`. */
interface Splice {
  start: number;
  end: number;
  text: string;
  label: string;
}

/**
 * Which original lines (0-based) may differ: `changed` lines stay in place, `removed` lines go,
 * `inserted` counts new lines placed right after an original line (-1: before the first).
 */
export interface LineAllowance {
  changed: Set<number>;
  removed: Set<number>;
  inserted: Map<number, number>;
}

/** The edited text and the lines the proof allows to differ. */
export interface Rendered {
  text: string;
  allowance: LineAllowance;
}

/** The expected type of a scalar after writing `value` into it: its own, unless plain cannot hold it. */
export function keptType(node: Scalar, value: string): Scalar.Type {
  const type = node.type ?? "PLAIN";
  // An empty plain scalar reads back as null: the empty string needs quotes.
  if (type === "PLAIN" && value === "") return "QUOTE_DOUBLE";
  return type;
}

/** Applies the ops to the original text as splices; positions come from the parsed nodes' ranges. */
export function render(source: Source, ops: readonly EditOp[]): Rendered {
  const lines = new LineIndex(source.text);
  const allowance: LineAllowance = { changed: new Set(), removed: new Set(), inserted: new Map() };
  const splices: Splice[] = [];
  for (const op of ops) {
    if (op.op === "set") splices.push(renderSet(source, lines, op, allowance));
    else if (op.op === "remove") splices.push(renderRemove(source, lines, op, allowance));
    else splices.push(renderInsert(source, lines, op, allowance));
  }
  return { text: applySplices(source, splices), allowance };
}

function renderSet(
  source: Source,
  lines: LineIndex,
  op: EditOp & { op: "set" },
  allowance: LineAllowance,
): Splice {
  const [start, valueEnd] = op.node.range!;
  const token = op.node.srcToken;
  let rendered: string;
  if (token === undefined) {
    // `key:` with nothing after it: write the value after the colon.
    rendered = renderScalar(op.value, op.type, op.inFlow, 0);
    if (source.text[start - 1] === ":") rendered = ` ${rendered}`;
  } else {
    if (
      token.type !== "scalar" &&
      token.type !== "single-quoted-scalar" &&
      token.type !== "double-quoted-scalar"
    ) {
      throw new Refusal(
        "gitops_unsafe_edit",
        `${source.file}: ${op.label} is a block scalar (| or >); Ferry only rewrites one-line values; write it as a plain or quoted scalar once by hand`,
      );
    }
    const copy = structuredClone(token) as CST.FlowScalar;
    CST.setScalarValue(copy, op.value, { afterKey: true, inFlow: op.inFlow, type: op.type });
    rendered = copy.source;
  }
  for (let line = lines.lineOf(start); line <= lines.lineOf(valueEnd); line++) allowance.changed.add(line);
  return { start, end: valueEnd, text: rendered, label: op.label };
}

function renderScalar(value: string, type: Scalar.Type, inFlow: boolean, indent: number): string {
  const token = CST.createScalarToken(value, { indent, inFlow, type, end: [] });
  return CST.stringify(token);
}

function renderRemove(
  source: Source,
  lines: LineIndex,
  op: EditOp & { op: "remove" },
  allowance: LineAllowance,
): Splice {
  const pair = op.map.items[op.index] as Pair<ParsedNode, ParsedNode | null>;
  const keyStart = pair.key.range[0];
  const valueEnd = pair.value?.range[1] ?? pair.key.range[1];
  if (op.map.flow) {
    // `{a: 1, b: 2}`: take the pair with the comma before it (or after it, for the first pair).
    const before = op.map.items[op.index - 1] as Pair<ParsedNode, ParsedNode | null> | undefined;
    const after = op.map.items[op.index + 1] as Pair<ParsedNode, ParsedNode | null> | undefined;
    const start = before ? (before.value?.range[1] ?? before.key.range[1]) : keyStart;
    const end = before ? valueEnd : after ? after.key.range[0] : valueEnd;
    for (let line = lines.lineOf(start); line <= lines.lineOf(end); line++) allowance.changed.add(line);
    return { start, end, text: "", label: op.label };
  }
  const keyLine = lines.lineOf(keyStart);
  const lastLine = lines.lineOf(valueEnd);
  const text = source.text;
  if (
    text.slice(lines.start(keyLine), keyStart).trim() !== "" ||
    !restIsComment(text.slice(valueEnd, lines.end(lastLine)))
  ) {
    throw new Refusal(
      "gitops_unsafe_edit",
      `${source.file}: ${op.label} shares its line with another node, so removing it would touch more than its own lines; put it on a line of its own below the entry's first key`,
    );
  }
  // The comment lines right above a key are that key's (yaml attaches them to it): they go with it.
  let firstLine = keyLine;
  const commentLines =
    isScalar(pair.key) && pair.key.commentBefore ? pair.key.commentBefore.split("\n").length : 0;
  while (firstLine - 1 >= 0 && keyLine - firstLine < commentLines && isCommentLine(lines.text(firstLine - 1)))
    firstLine--;
  for (let line = firstLine; line <= lastLine; line++) allowance.removed.add(line);
  return { start: lines.start(firstLine), end: lines.next(lastLine), text: "", label: op.label };
}

function renderInsert(
  source: Source,
  lines: LineIndex,
  op: EditOp & { op: "insert" },
  allowance: LineAllowance,
): Splice {
  const anchor = op.map.items[op.after] as Pair<ParsedNode, ParsedNode | null>;
  const anchorEnd = anchor.value?.range[1] ?? anchor.key.range[1];
  if (op.map.flow) {
    const text = op.entries.map((e) => `, ${e.key}: ${renderScalar(e.value, "PLAIN", true, 0)}`).join("");
    allowance.changed.add(lines.lineOf(anchorEnd));
    return { start: anchorEnd, end: anchorEnd, text, label: op.label };
  }
  const keyStart = anchor.key.range[0];
  const line = lines.lineOf(anchorEnd);
  const column = keyStart - lines.start(lines.lineOf(keyStart));
  const eol = lines.eol(line);
  const indent = " ".repeat(column);
  const body = op.entries.map(
    (e) => `${indent}${e.key}: ${renderScalar(e.value, "PLAIN", false, column)}${eol}`,
  );
  allowance.inserted.set(line, (allowance.inserted.get(line) ?? 0) + body.length);
  const at = lines.next(line);
  if (at === source.text.length && !source.text.endsWith("\n")) {
    // The last line has no newline: the new lines go after one, and the file still ends without.
    return { start: at, end: at, text: eol + body.join("").slice(0, -eol.length), label: op.label };
  }
  return { start: at, end: at, text: body.join(""), label: op.label };
}

function restIsComment(rest: string): boolean {
  const trimmed = rest.trim();
  return trimmed === "" || trimmed.startsWith("#");
}

function isCommentLine(line: string): boolean {
  return line.trim().startsWith("#");
}

/** Applies non-overlapping splices; an insertion sorts before a removal at the same offset. */
function applySplices(source: Source, splices: Splice[]): string {
  const text = source.text;
  const sorted = [...splices].sort((a, b) => a.start - b.start || a.end - b.end);
  let out = "";
  let at = 0;
  let previous: Splice | undefined;
  for (const splice of sorted) {
    if (previous && splice.start < at) {
      throw new Refusal(
        "gitops_unsafe_edit",
        `${source.file}: ${previous.label} and ${splice.label} name the same value; point each of the target's paths at its own value in the config`,
      );
    }
    previous = splice;
    out += text.slice(at, splice.start) + splice.text;
    at = splice.end;
  }
  return out + text.slice(at);
}

/** Line starts of a text, split at `\n` (a `\r` before it stays part of the line). */
export class LineIndex {
  readonly #text: string;
  readonly #starts: number[] = [0];

  constructor(text: string) {
    this.#text = text;
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.#starts.push(i + 1);
  }

  /** The 0-based line holding `offset`. */
  lineOf(offset: number): number {
    let low = 0;
    let high = this.#starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  start(line: number): number {
    return this.#starts[line]!;
  }

  /** Offset of the line's end, before its `\r\n` or `\n`. */
  end(line: number): number {
    const next = this.next(line);
    let end = next > this.start(line) && this.#text[next - 1] === "\n" ? next - 1 : next;
    if (end > this.start(line) && this.#text[end - 1] === "\r") end--;
    return end;
  }

  /** Offset where the next line starts (the text's length on the last line). */
  next(line: number): number {
    return this.#starts[line + 1] ?? this.#text.length;
  }

  text(line: number): string {
    return this.#text.slice(this.start(line), this.end(line));
  }

  /** The line ending this line uses, or the file's first one when it has none. */
  eol(line: number): string {
    const next = this.next(line);
    if (this.#text[next - 1] === "\n") return this.#text[next - 2] === "\r" ? "\r\n" : "\n";
    return this.#text.includes("\r\n") ? "\r\n" : "\n";
  }
}
