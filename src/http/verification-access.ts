import type { CompiledPolicy, PolicySubject } from "../identity/policy.ts";
import { mismatchSummary } from "../identity/policy.ts";
import type { Principal } from "../identity/principal.ts";

/** Why a caller may not verify an image for an environment (the `reason` of the 403; in openapi.yaml). */
export const VERIFICATION_REFUSALS = [
  "repository_not_configured",
  "not_app_pipeline",
  "environment_mismatch",
  "not_a_reader",
] as const;

/** One of {@link VERIFICATION_REFUSALS}. */
export type VerificationRefusal = (typeof VERIFICATION_REFUSALS)[number];

/** The decision of {@link VerificationAccess.decide}. */
export type VerificationAccessDecision =
  | { allowed: true }
  | {
      allowed: false;
      reason: VerificationRefusal;
      /** Safe to tell the caller: never whether the repository exists. */
      message: string;
      /** For the log only: which apps and rules were considered. */
      detail: Record<string, unknown>;
    };

/** What {@link VerificationAccess} is built from: the config's apps and readers, policies compiled once. */
export interface VerificationAccessConfig {
  apps: readonly { name: string; images: Readonly<Record<string, string>> }[];
  /** Each app's compiled `pipelines` (the same map signing uses; compiled at load, not here). */
  appPolicies: ReadonlyMap<string, CompiledPolicy>;
  /** `verification.readers`: groups whose members may verify. */
  readers: readonly string[];
}

/**
 * Who may verify what (docs/identity.md, "Who may verify what"). A report names candidate digests
 * and sources, and whether a digest exists, so it is given only to:
 * - a pipeline presenting its platform's own token that matches the `pipelines` of an app listing
 *   the image's repository in `apps[].images`;
 * - a Ferry-minted credential, for the environment it was minted for;
 * - a person in one of the `verification.readers` groups.
 * An image in no app's repository is refused for everyone, with one message whether or not the
 * repository exists. Pure: the route checks before any registry request.
 */
export class VerificationAccess {
  /** Repository (`host/path`, as apps list them) → the apps listing it. */
  readonly #owners = new Map<string, string[]>();
  readonly #policies: ReadonlyMap<string, CompiledPolicy>;
  readonly #readers: ReadonlySet<string>;

  constructor(config: VerificationAccessConfig) {
    for (const app of config.apps) {
      for (const repository of new Set(Object.values(app.images))) {
        const owners = this.#owners.get(repository) ?? [];
        owners.push(app.name);
        this.#owners.set(repository, owners);
      }
    }
    this.#policies = config.appPolicies;
    this.#readers = new Set(config.readers);
  }

  /** May `principal` verify an image of `repository` (`host/path`) for `environment`? */
  decide(principal: Principal, repository: string, environment: string): VerificationAccessDecision {
    const apps = this.#owners.get(repository);
    if (apps === undefined) {
      return {
        allowed: false,
        reason: "repository_not_configured",
        message: "Ferry verifies only images of repositories listed in apps[].images",
        detail: { repository },
      };
    }
    if (principal.kind === "human") {
      if (principal.groups.some((g) => this.#readers.has(g))) return { allowed: true };
      return {
        allowed: false,
        reason: "not_a_reader",
        message: "people may verify only as members of a verification.readers group",
        detail: { groups: principal.groups },
      };
    }
    if (principal.via === "ferry") {
      if (principal.environment !== undefined && principal.environment === environment)
        return { allowed: true };
      return {
        allowed: false,
        reason: "environment_mismatch",
        message: `this credential was minted for environment ${principal.environment ?? "(none)"}; it verifies only for that environment`,
        detail: { minted: principal.environment, requested: environment },
      };
    }
    const subject: PolicySubject = { issuer: principal.issuer.name, claims: principal.claims };
    if (apps.some((app) => this.#policies.get(app)?.match(subject) !== undefined)) return { allowed: true };
    return {
      allowed: false,
      reason: "not_app_pipeline",
      message: `this pipeline is not one of the pipelines of the app owning the repository (${apps.join(", ")}; see apps[].pipelines)`,
      detail: {
        apps: apps.map((app) => {
          const policy = this.#policies.get(app);
          return { app, rules: policy ? mismatchSummary(policy.evaluate(subject)) : [] };
        }),
      },
    };
  }
}
