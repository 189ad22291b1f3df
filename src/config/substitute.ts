/** One `${VAR}` that could not be substituted. */
export interface SubstitutionProblem {
  path: (string | number)[];
  message: string;
  /** The variable that was not set. */
  variable: string;
}

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` (and `${VAR:-default}`) in every string value of a parsed YAML document with
 * the environment's value; `$$` stands for a literal `$`. Substitution runs on values after YAML
 * parsing, never on the raw text, so a variable's content cannot change the document's structure.
 */
export function substituteEnv(
  value: unknown,
  env: Record<string, string | undefined>,
  problems: SubstitutionProblem[],
  path: (string | number)[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(REFERENCE, (whole, name: string | undefined, fallback: string | undefined) => {
      if (whole === "$$") return "$";
      const found = env[name!];
      if (found !== undefined && found !== "") return found;
      if (fallback !== undefined) return fallback;
      problems.push({
        path,
        variable: name!,
        message: `environment variable ${name} is not set (set it, or write \${${name}:-default})`,
      });
      return "";
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, env, problems, [...path, i]));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value))
      out[key] = substituteEnv(item, env, problems, [...path, key]);
    return out;
  }
  return value;
}
