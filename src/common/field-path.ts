/**
 * The path syntax of GitOps targets: dotted keys with list selectors, e.g.
 * `spec.template.spec.containers[name=web].image`.
 *
 * - `key`: a map key; any characters but `.`, `[`, `]` and whitespace.
 * - `["key"]`: a map key written as a JSON string, for keys holding dots or brackets
 *   (`metadata.annotations["app.kubernetes.io/name"]`).
 * - `[3]`: the item of a list at that index (from 0).
 * - `[field=value]`: the one item of a list that is a map whose `field` is the scalar `value`
 *   (compared as text, so `[port=80]` matches `port: 80`); `value` may be a JSON string.
 */
export type FieldSegment =
  | { type: "key"; key: string }
  | { type: "index"; index: number }
  | { type: "match"; field: string; value: string };

/** The outcome of {@link parseFieldPath}: the segments, or why the path is not valid. */
export type FieldPathResult = { ok: true; segments: FieldSegment[] } | { ok: false; message: string };

const PLAIN_KEY = /^[^.[\]\s"=]+/;
const INDEX = /^\[(0|[1-9][0-9]{0,8})\]/;
const MAX_PATH = 1024;

/**
 * Parses a target path (see {@link FieldSegment}). Pure and zod-free, so the config schema can
 * report a bad path at load with its config path.
 */
export function parseFieldPath(field: string): FieldPathResult {
  if (field.length === 0) return fail(field, 0, "the path is empty");
  if (field.length > MAX_PATH) return fail(field, MAX_PATH, `the path is longer than ${MAX_PATH} characters`);
  const segments: FieldSegment[] = [];
  let rest = field;
  const at = () => field.length - rest.length;
  while (rest.length > 0) {
    if (segments.length > 0) {
      if (rest.startsWith(".")) {
        rest = rest.slice(1);
        if (!PLAIN_KEY.test(rest)) return fail(field, at(), "a key must follow `.`");
      } else if (!rest.startsWith("[")) {
        return fail(field, at(), "expected `.` or `[` between segments");
      }
    }
    const plain = PLAIN_KEY.exec(rest);
    if (plain && !rest.startsWith("[")) {
      segments.push({ type: "key", key: plain[0] });
      rest = rest.slice(plain[0].length);
      continue;
    }
    if (!rest.startsWith("[")) return fail(field, at(), "expected a key, `[index]` or `[field=value]`");
    const index = INDEX.exec(rest);
    if (index) {
      segments.push({ type: "index", index: Number(index[1]) });
      rest = rest.slice(index[0].length);
      continue;
    }
    const bracket = parseBracket(rest.slice(1));
    if (!bracket.ok) return fail(field, at() + 1 + bracket.at, bracket.message);
    segments.push(bracket.segment);
    rest = rest.slice(1 + bracket.length);
  }
  return { ok: true, segments };
}

type Bracket =
  | { ok: true; segment: FieldSegment; length: number }
  | { ok: false; at: number; message: string };

/** Parses the inside of `[…]` (without the `[`): `"key"`, `field=value` or `field="value"`. */
function parseBracket(text: string): Bracket {
  if (text.startsWith('"')) {
    const quoted = readJsonString(text);
    if (!quoted) return { ok: false, at: 0, message: 'an unterminated or invalid "…" key' };
    if (text[quoted.length] !== "]") return { ok: false, at: quoted.length, message: "expected `]`" };
    if (quoted.value.length === 0) return { ok: false, at: 0, message: "the key is empty" };
    return { ok: true, segment: { type: "key", key: quoted.value }, length: quoted.length + 1 };
  }
  const eq = text.indexOf("=");
  const close = text.indexOf("]");
  if (close < 0) return { ok: false, at: text.length, message: "`[` is not closed" };
  if (eq < 0 || eq > close) {
    return { ok: false, at: 0, message: 'expected `[index]`, `[field=value]` or `["key"]`' };
  }
  const field = text.slice(0, eq);
  if (!/^[^.[\]\s"=]+$/.test(field)) {
    return { ok: false, at: 0, message: "the field of `[field=value]` must be a plain key" };
  }
  const after = text.slice(eq + 1);
  if (after.startsWith('"')) {
    const quoted = readJsonString(after);
    if (!quoted) return { ok: false, at: eq + 1, message: 'an unterminated or invalid "…" value' };
    if (after[quoted.length] !== "]")
      return { ok: false, at: eq + 1 + quoted.length, message: "expected `]`" };
    return {
      ok: true,
      segment: { type: "match", field, value: quoted.value },
      length: eq + 1 + quoted.length + 1,
    };
  }
  const value = text.slice(eq + 1, close);
  if (value.length === 0) return { ok: false, at: eq + 1, message: "the value of `[field=value]` is empty" };
  if (/[\s[]/.test(value)) {
    return {
      ok: false,
      at: eq + 1,
      message: 'write a value with spaces or brackets as a JSON string: [field="…"]',
    };
  }
  return { ok: true, segment: { type: "match", field, value }, length: close + 1 };
}

/** Reads a JSON string literal at the start of `text`; its decoded value and its source length. */
function readJsonString(text: string): { value: string; length: number } | undefined {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === "\\") {
      i++;
      continue;
    }
    if (text[i] === '"') {
      try {
        const value = JSON.parse(text.slice(0, i + 1)) as string;
        return { value, length: i + 1 };
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function fail(field: string, at: number, message: string): FieldPathResult {
  return { ok: false, message: `${message} (at character ${at + 1} of ${JSON.stringify(field)})` };
}

/** Renders segments back to the path syntax, for messages that name a prefix of a path. */
export function formatFieldPath(segments: readonly FieldSegment[]): string {
  let out = "";
  for (const segment of segments) {
    if (segment.type === "index") out += `[${segment.index}]`;
    else if (segment.type === "match") {
      const plain = /^[^\s[\]"]+$/.test(segment.value);
      out += `[${segment.field}=${plain ? segment.value : JSON.stringify(segment.value)}]`;
    } else if (PLAIN_KEY.exec(segment.key)?.[0] === segment.key)
      out += out === "" ? segment.key : `.${segment.key}`;
    else out += `[${JSON.stringify(segment.key)}]`;
  }
  return out === "" ? "(document root)" : out;
}
