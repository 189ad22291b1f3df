import { anchoredRegExp } from "../common/patterns.ts";

/**
 * Claim matchers: the pieces a trust policy is compiled into. A matcher tests the canonical text of
 * a scalar claim (strings as they are, numbers and booleans as JSON writes them), so `runner_id: 1`
 * in YAML and GitLab's integer `runner_id` agree, and so do `"74"` and GitHub's string `repository_id`.
 */
export interface Matcher {
  readonly kind: "exact" | "glob" | "regex";
  /** How the matcher reads in an explanation: `"main"`, `one of ["push","workflow_dispatch"]`, `glob "refs/heads/*"`. */
  readonly description: string;
  test(value: string): boolean;
}

/** The config form of a matcher (see `claimMatcher` in src/config/schema.ts). */
export type MatcherSpec =
  | string
  | number
  | boolean
  | (string | number | boolean)[]
  | { glob: string }
  | { regex: string };

/** The text a scalar claim is matched as; undefined for objects, arrays, null and non-finite numbers. */
export function canonicalScalar(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * Compiles a glob: `**` is any text, `*` any text without `/`, `?` one character other than `/`;
 * everything else is literal; the whole value must match.
 */
export function globRegex(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      out += ".*";
      i++;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
  }
  return new RegExp(`^${out}$`, "s");
}

/**
 * Compiles one matcher from its config form; a regex through {@link anchoredRegExp}, as every
 * pattern in a policy. Throws SyntaxError for an invalid regex.
 */
export function compileMatcher(spec: MatcherSpec): Matcher {
  if (Array.isArray(spec) || typeof spec !== "object") {
    const values = (Array.isArray(spec) ? spec : [spec]).map((v) => canonicalScalar(v)!);
    const set = new Set(values);
    return {
      kind: "exact",
      description: values.length === 1 ? JSON.stringify(values[0]) : `one of ${JSON.stringify(values)}`,
      test: (value) => set.has(value),
    };
  }
  if ("glob" in spec) {
    const re = globRegex(spec.glob);
    return { kind: "glob", description: `glob ${JSON.stringify(spec.glob)}`, test: (v) => re.test(v) };
  }
  const re = anchoredRegExp(spec.regex);
  return { kind: "regex", description: `regex ${JSON.stringify(spec.regex)}`, test: (v) => re.test(v) };
}
