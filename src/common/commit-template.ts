/**
 * The placeholders of a GitOps commit message template. They live here, beside no domain, because
 * the config schema checks a template at load and the gitops step fills it in (src/gitops/message.ts):
 * one list for both, without the config depending on gitops.
 */

/** The placeholders a template may use. */
export const TEMPLATE_FIELDS = [
  "app",
  "environment",
  "digest",
  "shortDigest",
  "repository",
  "promotion",
  "requestedBy",
] as const;

/** One placeholder's value. */
export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/** The default template (the commit's subject line). */
export const DEFAULT_TEMPLATE = "Promote {app} to {environment}: {shortDigest}";

export const PLACEHOLDER = /\{([^{}]*)\}/g;

/** Why `template` is not usable, or undefined: every `{name}` must be one of {@link TEMPLATE_FIELDS}. */
export function templateProblem(template: string): string | undefined {
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (!(TEMPLATE_FIELDS as readonly string[]).includes(match[1]!))
      return `unknown placeholder {${match[1]}} (known: ${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(", ")})`;
  }
  return undefined;
}
