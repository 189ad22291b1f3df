/**
 * Reads a claim by its dotted path. Claim names may themselves contain dots (`kubernetes.io`,
 * CircleCI's `oidc.circleci.com/project-id`), so at each level the longest run of segments that
 * names an existing key wins: `kubernetes.io.namespace` finds `claims["kubernetes.io"].namespace`.
 * Returns undefined when nothing is there. Only own properties are read (no `__proto__` tricks).
 */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  return walk(claims, path.split("."));
}

function walk(value: unknown, segments: string[]): unknown {
  if (segments.length === 0) return value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  for (let take = segments.length; take >= 1; take--) {
    const key = segments.slice(0, take).join(".");
    if (Object.hasOwn(value, key)) {
      const found = walk((value as Record<string, unknown>)[key], segments.slice(take));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** A short, log-safe rendering of a claim value for explanations (at most ~120 characters). */
export function describeClaim(value: unknown): string {
  if (value === undefined) return "missing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
