import type { Principal } from "../identity/principal.ts";

/**
 * Why `principal` may not read the audit log, or undefined when it may: a person (human issuer) in
 * one of the `audit.readers` groups. The log names the identities and decisions of every app, so
 * no pipeline reads it, and no person outside those groups.
 */
export function auditReadRefusal(
  principal: Principal,
  readers: ReadonlySet<string>,
): { reason: "not_a_person" | "not_a_reader"; message: string } | undefined {
  if (principal.kind !== "human")
    return { reason: "not_a_person", message: "the audit log is read by people in an audit.readers group" };
  if (!principal.groups.some((g) => readers.has(g)))
    return {
      reason: "not_a_reader",
      message: "people may read the audit log only as members of an audit.readers group",
    };
  return undefined;
}
