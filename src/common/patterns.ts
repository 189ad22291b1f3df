/**
 * Compiles a pattern from config the one way every policy uses it: the whole value must match,
 * whatever the author wrote (`main|release` means `^(?:main|release)$`), with the `u` flag (so
 * `\p{L}` and astral characters mean the same in claim patterns and in certificate subjects).
 *
 * Wrapping alone does not anchor: `main)|(.*` wraps to `^(?:main)|(.*)$`, whose second branch
 * matches anything. So the source is first compiled on its own; a pattern that is valid by itself
 * is one whole disjunction, which the wrapping group then holds entire. Throws SyntaxError for a
 * source that is not a valid pattern by itself (unbalanced groups and classes, a trailing `\`).
 */
export function anchoredRegExp(source: string): RegExp {
  const alone = new RegExp(source, "u");
  // `source` of a compiled pattern is the same pattern (escaped only where a literal would need it).
  return new RegExp(`^(?:${alone.source})$`, "u");
}
