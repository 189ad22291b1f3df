import type { Principal } from "../identity/principal.ts";
import type { AuditActor } from "./types.ts";

/**
 * The audit actor of an authenticated caller: its issuer's URL (as `token_exchanges` and `signings`
 * record it, never the config's name, which may be renamed) and its whole `sub`; a person's name too.
 */
export function actorOf(principal: Principal): AuditActor {
  const name = principal.kind === "human" ? principal.name : undefined;
  return {
    issuer: principal.issuer.url,
    subject: principal.subject,
    ...(name === undefined ? {} : { name }),
  };
}
