import { createHash } from "node:crypto";
import type { FerryConfig } from "../../config/schema.ts";
import type { CompiledApprovalRules, IssuerLinks } from "./rules.ts";

/**
 * JSON with object keys sorted (recursively) and no whitespace. The config holds only strings,
 * booleans, integers, arrays and plain objects, for which this is the RFC 8785 form: the same
 * entry always gives the same text, whatever order the YAML listed its keys in.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The policy hash an approval is bound to: SHA-256 (hex) of the canonical JSON of the environment's
 * validated config entry (defaults filled in, durations in ms), so any change of what the
 * environment requires (`require`, `approvals`, `promoters`, `after`, `soak`, `freeze`) voids the
 * approvals given before it.
 */
export function environmentPolicyHash(entry: FerryConfig["environments"][number]): string {
  return createHash("sha256").update(canonicalJson(entry), "utf8").digest("hex");
}

/** The human issuers' `links`, by issuer name. */
export function compileIssuerLinks(issuers: FerryConfig["issuers"]): ReadonlyMap<string, IssuerLinks> {
  const links = new Map<string, IssuerLinks>();
  for (const issuer of issuers)
    if (issuer.kind === "human" && issuer.links !== undefined) links.set(issuer.name, issuer.links);
  return links;
}

/** Compiles every environment's `approvals`, once at config load; environments without are absent. */
export function compileApprovalRules(
  environments: FerryConfig["environments"],
  issuerLinks: ReadonlyMap<string, IssuerLinks>,
): ReadonlyMap<string, CompiledApprovalRules> {
  const rules = new Map<string, CompiledApprovalRules>();
  for (const env of environments) {
    const a = env.approvals;
    if (a === undefined) continue;
    rules.set(env.name, {
      environment: env.name,
      count: a.count,
      groups: [...a.groups],
      requireEach: [...(a.requireEach ?? [])],
      expiresAfter: a.expiresAfter,
      requireLinkedIdentity: a.separationOfDuties.requireLinkedIdentity,
      policyHash: environmentPolicyHash(env),
      issuerLinks,
    });
  }
  return rules;
}
