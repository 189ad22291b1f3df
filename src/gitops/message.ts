/**
 * Commit messages of Ferry's GitOps writes: a template of the config, then Ferry's trailers
 * (`git interpret-trailers` format), which is how a later run finds what an earlier one pushed.
 */

import {
  DEFAULT_TEMPLATE,
  PLACEHOLDER,
  type TemplateField,
  templateProblem,
} from "../common/commit-template.ts";

export {
  DEFAULT_TEMPLATE,
  TEMPLATE_FIELDS,
  type TemplateField,
  templateProblem,
} from "../common/commit-template.ts";

/** What one commit message is made of. */
export interface MessageFacts {
  promotion: string;
  app: string;
  environment: string;
  digest: string;
  repository: string;
  requestedBy: string;
  /** The approvers who counted, once approvals exist: one `Ferry-Approved-By` trailer each. */
  approvedBy?: readonly string[];
}

/** A compiled template: facts in, the whole message (with trailers) out. */
export type MessageTemplate = (facts: MessageFacts) => string;

// A value must not open a line of its own (a forged trailer) nor carry control characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes
const oneLine = (value: string) => value.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ").trim();

/** Compiles `template` (checked with {@link templateProblem} at load) once. */
export function compileTemplate(template: string = DEFAULT_TEMPLATE): MessageTemplate {
  const problem = templateProblem(template);
  if (problem !== undefined) throw new TypeError(problem);
  return (facts) => {
    const values: Record<TemplateField, string> = {
      app: facts.app,
      environment: facts.environment,
      digest: facts.digest,
      shortDigest: facts.digest.replace(/^sha256:/, "").slice(0, 12),
      repository: facts.repository,
      promotion: facts.promotion,
      requestedBy: oneLine(facts.requestedBy),
    };
    const text = template.replace(PLACEHOLDER, (_whole, name: TemplateField) => values[name]).trimEnd();
    const trailers = [
      `Ferry-Promotion: ${facts.promotion}`,
      `Ferry-Digest: ${facts.digest}`,
      `Ferry-App: ${facts.app}`,
      `Ferry-Environment: ${facts.environment}`,
      ...(facts.approvedBy ?? []).map((a) => `Ferry-Approved-By: ${oneLine(a)}`),
    ];
    return `${text}\n\n${trailers.join("\n")}\n`;
  };
}

/**
 * The `Ferry-Promotion` trailer's value of a commit message, or undefined. Only the message's last
 * paragraph is read (where git keeps trailers), so a template's text cannot pass for one.
 */
export function promotionTrailer(message: string): string | undefined {
  const paragraphs = message.trimEnd().split(/\n\s*\n/);
  const last = paragraphs.length > 1 ? paragraphs[paragraphs.length - 1]! : "";
  for (const line of last.split("\n")) {
    const match = /^Ferry-Promotion: (\S+)$/.exec(line.trim());
    if (match) return match[1];
  }
  return undefined;
}
