import { readClaim } from "../../identity/claim-path.ts";
import type { Principal } from "../../identity/principal.ts";
import { type IssuerLinks, LINK_PLATFORMS, type PersonLinks } from "./rules.ts";

const MAX_LINKS = 16;

function linkValues(value: unknown): string[] {
  const one = (v: unknown): string | undefined =>
    typeof v === "number" && Number.isSafeInteger(v)
      ? String(v)
      : typeof v === "string" && v.trim() !== ""
        ? v.trim()
        : undefined;
  const list = Array.isArray(value) ? value.slice(0, MAX_LINKS) : [value];
  return list.map(one).filter((v): v is string => v !== undefined);
}

/**
 * A person's CI identities: for each platform of their issuer's `links`, the values at its claim
 * path (a string, a number, or a list of them). A platform whose claim is missing is absent.
 */
export function linksOf(principal: Pick<Principal, "claims">, links: IssuerLinks | undefined): PersonLinks {
  const out: PersonLinks = {};
  if (links === undefined) return out;
  for (const platform of LINK_PLATFORMS) {
    const path = links[platform];
    if (path === undefined) continue;
    const values = linkValues(readClaim(principal.claims, path));
    if (values.length > 0) out[platform] = values;
  }
  return out;
}

/**
 * Whether any of a person's link values names the account `{id, login}`. A link claim holds either
 * an id (GitHub `actor_id`, GitLab `user_id`) or a login, and a claim does not say which, so each
 * value is compared with both: ids exactly, logins case-insensitively (GitHub and GitLab logins
 * are). Comparing both ways can only refuse more, never admit the actor.
 */
export function samePerson(
  values: readonly string[],
  account: { id?: string | undefined; login?: string | undefined },
): boolean {
  const login = account.login?.toLowerCase();
  return values.some(
    (v) =>
      (account.id !== undefined && v === account.id) || (login !== undefined && v.toLowerCase() === login),
  );
}

/** The keys that identify one person across identities: `platform:value`, lower-cased. */
export function personKeys(links: PersonLinks): string[] {
  const keys: string[] = [];
  for (const platform of LINK_PLATFORMS)
    for (const v of links[platform] ?? []) keys.push(`${platform}:${v.toLowerCase()}`);
  return keys;
}
