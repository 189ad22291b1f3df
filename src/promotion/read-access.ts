import type { FerryConfig } from "../config/schema.ts";
import type { CompiledPolicy } from "../identity/policy.ts";
import type { Principal } from "../identity/principal.ts";

/**
 * What one caller may read of promotions: per app, the environments whose promotions (their `to`),
 * current digest and history it may see. An app absent from the map is invisible to it.
 */
export interface ReadScope {
  readonly apps: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Whether `scope` shows promotions into `environment` of `app`. */
export function mayRead(scope: ReadScope, app: string, environment: string): boolean {
  return scope.apps.get(app)?.has(environment) ?? false;
}

/** The scope of a caller who may read nothing. */
export const NOTHING: ReadScope = { apps: new Map() };

/** What {@link compileReadAccess} is built from: a validated config's apps, environments and readers. */
export type ReadAccessConfig = Pick<FerryConfig, "apps" | "environments"> & {
  verification: Pick<FerryConfig["verification"], "readers">;
  audit?: Pick<FerryConfig["audit"], "readers">;
};

/** Who may read which promotions; see {@link compileReadAccess}. */
export interface PromotionReadAccess {
  /** The caller's {@link ReadScope}, decided from its verified identity alone (no I/O). */
  scope(principal: Principal): ReadScope;
}

/**
 * Compiles who may read promotions (docs/promotion.md, "Who may read"), once at config load. An app's
 * promotions, environments and history name digests, people and pipeline runs, so they are shown
 * only to:
 * - a pipeline presenting its platform's own token that matches the app's `pipelines` (the same
 *   compiled policies signing and verification use, passed in, not compiled again): all of the app;
 * - a Ferry-minted credential: the promotions into the environment it was minted for, of every app
 *   with a repository there (the credential carries an environment, not an app);
 * - a person in a `verification.readers` or `audit.readers` group: every app (an audit reader reads
 *   every decision in the log already, and a promotion's evidence is read through its promotion); or in the `promoters.groups`,
 *   `approvals.groups` or `approvals.requireEach` of one of the app's environments: all of that app (approvers must see what
 *   they approve, on-call staff what they would roll back).
 * Everyone else sees nothing. An app's environments are those it has a repository for (`images`).
 */
export function compileReadAccess(
  config: ReadAccessConfig,
  appPolicies: ReadonlyMap<string, CompiledPolicy>,
): PromotionReadAccess {
  const readers = new Set([...config.verification.readers, ...(config.audit?.readers ?? [])]);
  const known = new Set(config.environments.map((e) => e.name));
  const apps = config.apps.map((app) => {
    const environments = new Set(Object.keys(app.images).filter((e) => known.has(e)));
    const groups = new Set<string>();
    for (const env of config.environments) {
      if (!environments.has(env.name)) continue;
      for (const g of env.promoters?.groups ?? []) groups.add(g);
      for (const g of env.approvals?.groups ?? []) groups.add(g);
      for (const g of env.approvals?.requireEach ?? []) groups.add(g);
    }
    return { name: app.name, environments, groups, pipelines: appPolicies.get(app.name) };
  });
  const everything: ReadScope = { apps: new Map(apps.map((a) => [a.name, a.environments])) };

  return {
    scope(principal) {
      if (principal.kind === "human") {
        if (principal.groups.some((g) => readers.has(g))) return everything;
        const mine = apps.filter((a) => principal.groups.some((g) => a.groups.has(g)));
        return { apps: new Map(mine.map((a) => [a.name, a.environments])) };
      }
      if (principal.via === "ferry") {
        const minted = principal.environment;
        if (minted === undefined) return NOTHING;
        const only = new Set([minted]);
        return {
          apps: new Map(apps.filter((a) => a.environments.has(minted)).map((a) => [a.name, only])),
        };
      }
      const subject = { issuer: principal.issuer.name, claims: principal.claims };
      const mine = apps.filter((a) => a.pipelines?.match(subject) !== undefined);
      return { apps: new Map(mine.map((a) => [a.name, a.environments])) };
    },
  };
}
