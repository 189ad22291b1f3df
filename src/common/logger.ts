import { createHash } from "node:crypto";
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Paths blanked out wherever they appear (pino's path syntax: `a.b`, `a['b-c']`, `*` for any key).
 * Tokens, keys and secrets must never be logged; to identify one, log {@link fingerprint} of it
 * instead.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['proxy-authorization']",
  "res.headers['set-cookie']",
  "*.authorization",
  "*.password",
  "*.token",
  "*.subject_token",
  "*.access_token",
  "*.id_token",
  "*.refresh_token",
  "*.secretAccessKey",
  "*.sessionToken",
  "*.privateKey",
  "*.secret",
  "*.key",
  "password",
  "token",
  "secret",
];

const CENSOR = "[redacted]";
const WILDCARD = Symbol("any key");

type Segment = string | typeof WILDCARD;

/** `req.headers['proxy-authorization']` → `["req", "headers", "proxy-authorization"]`. */
function parsePath(path: string): Segment[] {
  const segments: Segment[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(?:'([^']*)'|"([^"]*)")\]/g)) {
    const name = m[1] ?? m[2] ?? m[3]!;
    segments.push(m[1] === "*" ? WILDCARD : name);
  }
  return segments;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/**
 * Redaction compiled from {@link REDACT_PATHS}, applied to each JSON line as it is written (so
 * to the merged object, the child loggers' bindings and the serializers' output alike). A line
 * in which no redacted name appears as a key (`"token":`) is written as is: one regular
 * expression test per line, where pino's own redaction walked every path for every top-level
 * value of every line. Otherwise the line is parsed, the paths are blanked and it is serialized
 * again.
 */
export function compileRedaction(paths: readonly string[] = REDACT_PATHS): {
  line: (line: string) => string;
  value: (value: Record<string, unknown>) => void;
} {
  const rules = paths.map(parsePath);
  const names = new Set<string>();
  for (const rule of rules) {
    const last = rule.at(-1);
    if (typeof last !== "string") throw new Error(`a redaction path must end with a name: ${rule.join(".")}`);
    names.add(last);
  }
  const escaped = [...names].map((n) =>
    JSON.stringify(n)
      .slice(1, -1)
      .replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
  );
  const mentions = new RegExp(`"(?:${escaped.join("|")})":`);

  const apply = (node: unknown, rule: Segment[], at: number): void => {
    if (!isObject(node) || Array.isArray(node)) return;
    const segment = rule[at]!;
    const last = at === rule.length - 1;
    if (segment === WILDCARD) {
      for (const key of Object.keys(node)) apply(node[key], rule, at + 1);
    } else if (Object.hasOwn(node, segment)) {
      if (last) node[segment] = CENSOR;
      else apply(node[segment], rule, at + 1);
    }
  };
  const value = (root: Record<string, unknown>) => {
    for (const rule of rules) apply(root, rule, 0);
  };
  return {
    value,
    line(text) {
      if (!mentions.test(text)) return text;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      // Never write what could not be checked.
      if (!isObject(parsed))
        return `${JSON.stringify({ level: "error", msg: "log line withheld: unreadable" })}\n`;
      value(parsed);
      return `${JSON.stringify(parsed)}\n`;
    },
  };
}

const redaction = compileRedaction();

/** A redacted JSON copy of an object, or a placeholder when it has no JSON form (cycles, BigInt). */
function redactedCopy(value: object): unknown {
  try {
    const copy = JSON.parse(JSON.stringify(value)) as unknown;
    if (isObject(copy)) redaction.value(copy);
    return copy;
  } catch {
    return "[unserializable]";
  }
}

/** Creates the process logger: JSON lines on stdout (or `destination`), with secrets redacted. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "ferry" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        streamWrite: redaction.line,
        // Objects interpolated into a message (`%o`, `%j`) become part of its text: redact them first.
        logMethod(args, method) {
          // As pino reads them: (object or null, message, ...values) or (message, ...values).
          const interpolated = typeof args[0] === "object" ? 2 : 1;
          for (let i = interpolated; i < args.length; i++) {
            const arg: unknown = args[i];
            if (isObject(arg)) args[i] = redactedCopy(arg);
          }
          method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

/** The SHA-256 of a secret, hex: safe to log, enough to correlate. */
export function fingerprint(secret: string | Uint8Array): string {
  return createHash("sha256").update(secret).digest("hex");
}
