import type { z } from "zod";

/** One problem found in a config file: where it is and what to do about it. */
export interface ConfigProblem {
  /** Where, as `environments[1].approvals.count` (empty for the whole file). */
  path: string;
  message: string;
}

/** Formats a path the way a reader writes it: `apps[0].images.staging`, `x["a.b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(part))
      out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** Says what a value is, in a config reader's words (`the string "two"`, `a list`). */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string")
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

const ARTICLE: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
};

/**
 * A zod error map that says what was expected and what was found, in the words of a config file
 * rather than of TypeScript ("expected a positive integer, got the string \"two\"").
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "is required";
      const expected = ARTICLE[issue.expected] ?? issue.expected;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case "too_small": {
      if (issue.origin === "number" || issue.origin === "int") {
        if (issue.minimum === 0 && !issue.inclusive)
          return `expected a positive ${issue.origin === "int" ? "integer" : "number"}`;
        return `expected at least ${String(issue.minimum)}`;
      }
      if (issue.origin === "array") return `expected at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === "string")
        return issue.minimum === 1
          ? "must not be empty"
          : `expected at least ${String(issue.minimum)} characters`;
      return undefined;
    }
    case "too_big":
      if (issue.origin === "string") return `expected at most ${String(issue.maximum)} characters`;
      return `expected at most ${String(issue.maximum)}`;
    case "unrecognized_keys":
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")} (check the spelling against docs/config.md)`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
};

/** Turns a zod error into config problems, one per issue, in document order. */
export function problemsFromZod(error: z.ZodError): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    // A union that failed on every branch: report the branch that got furthest, not "invalid input".
    if (issue.code === "invalid_union" && issue.errors.length > 0 && issue.message === "Invalid input") {
      const keys = issue.errors.flatMap((branch) => branch.filter((i) => i.code === "unrecognized_keys"));
      if (keys.length === issue.errors.length) {
        out.push({
          path: formatPath(issue.path),
          message: "expected exactly one of the documented forms (see docs/config.md)",
        });
        continue;
      }
      const best = issue.errors.reduce((a, b) => (a.length <= b.length ? a : b));
      for (const inner of best) {
        out.push({ path: formatPath([...issue.path, ...inner.path]), message: inner.message });
      }
      continue;
    }
    out.push({ path: formatPath(issue.path), message: issue.message });
  }
  return out;
}
