import type { Platform } from "../../identity/claims.ts";

/** The CI platforms a person's identity can be linked to (`issuers[].links`). */
export const LINK_PLATFORMS = ["github", "gitlab"] as const;
export type LinkPlatform = (typeof LINK_PLATFORMS)[number];

/** A human issuer's `links`: per CI platform, the claim path that holds the person's id or login there. */
export type IssuerLinks = Readonly<Partial<Record<LinkPlatform, string>>>;

/** A person's CI identities, as read from their token's link claims (values as strings). */
export type PersonLinks = Partial<Record<LinkPlatform, string[]>>;

/** One environment's `approvals`, compiled once at config load. */
export interface CompiledApprovalRules {
  environment: string;
  /** How many distinct people must approve. */
  count: number;
  /** Approvers belong to one of these groups (or one of `requireEach`). */
  groups: readonly string[];
  /** At least one counting approver from each of these groups. */
  requireEach: readonly string[];
  /** An approval counts while younger than this (ms). */
  expiresAfter: number;
  /** `separationOfDuties.requireLinkedIdentity`: refuse (`sod_unverifiable`) when links cannot be compared. */
  requireLinkedIdentity: boolean;
  /**
   * SHA-256 (hex) of the canonical JSON of the environment's whole config entry (`require`,
   * `approvals` and the rest): an approval given under another hash no longer counts.
   */
  policyHash: string;
  /** Per human issuer name: its `links`; an issuer without links is absent. */
  issuerLinks: ReadonlyMap<string, IssuerLinks>;
}

/** Whether a platform is one whose pipeline actor Ferry records and links compare against. */
export function isLinkPlatform(platform: Platform | string | undefined): platform is LinkPlatform {
  return (LINK_PLATFORMS as readonly string[]).includes(platform ?? "");
}
