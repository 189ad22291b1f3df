/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Lower-cased: `basic`, `bearer`, … */
  scheme: string;
  /** Parameter names lower-cased; values unquoted and unescaped. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

/**
 * Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1): one or more challenges, each a scheme and
 * comma-separated `name=value` parameters whose values are tokens or quoted strings (with `\`
 * escapes), e.g. `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
 * Malformed input yields the challenges parsed before the fault.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i]!)) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(header);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string | undefined => {
    if (header[i] !== '"') return undefined;
    i++;
    let value = "";
    while (i < header.length && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < header.length) i++;
      value += header[i];
      i++;
    }
    if (header[i] !== '"') return undefined;
    i++;
    return value;
  };

  let current: Challenge | undefined;
  while (i < header.length) {
    skip(/[\s,]/);
    const start = i;
    const name = token();
    if (name === undefined) break;
    skip(/[ \t]/);
    if (header[i] === "=" && current !== undefined) {
      i++;
      skip(/[ \t]/);
      const value = header[i] === '"' ? quoted() : token();
      if (value === undefined) break;
      current.params[name.toLowerCase()] = value;
      continue;
    }
    if (header[i] === "=") {
      i = start;
      break;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}
