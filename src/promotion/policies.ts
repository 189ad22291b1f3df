import type { FerryConfig } from "../config/schema.ts";
import type { CompiledPolicy } from "../identity/policy.ts";
import { compileApprovalRules, compileIssuerLinks } from "./approvals/compile.ts";
import type { CompiledApprovalRules, IssuerLinks } from "./approvals/rules.ts";
import { compileFreeze } from "./freeze.ts";
import type { EnvironmentRules } from "./gates.ts";
import { type CompiledPromoters, compilePromoters, type PromoterPolicies } from "./promoters.ts";

/** Everything promotion decides with, compiled once at config load. */
export interface PromotionPolicies {
  /** Per environment name: what its gates check. */
  environments: ReadonlyMap<string, EnvironmentRules>;
  /** Per environment name: its compiled `promoters`, when it has any. */
  promoters: ReadonlyMap<string, CompiledPromoters>;
  /** Per environment name: its compiled `approvals`, when it has them (src/approvals/). */
  approvals: ReadonlyMap<string, CompiledApprovalRules>;
  /** Per human issuer name: its `links` (the claims naming a person's CI accounts). */
  issuerLinks: ReadonlyMap<string, IssuerLinks>;
  /** `promotion.maxWait` in milliseconds. */
  maxWait: number;
  /** The compiled policies {@link mayPromote} needs for one app and environment. */
  promoterPolicies(app: string, environment: string): PromoterPolicies;
}

/**
 * Compiles the promotion rules of a validated config. `appPipelines` are the apps' compiled
 * `pipelines` from `compileTrustPolicies`, reused rather than compiled twice.
 */
export function compilePromotionPolicies(
  config: Pick<FerryConfig, "environments" | "promotion"> & Partial<Pick<FerryConfig, "issuers">>,
  appPipelines: ReadonlyMap<string, CompiledPolicy>,
): PromotionPolicies {
  const environments = new Map<string, EnvironmentRules>();
  const promoters = new Map<string, CompiledPromoters>();
  config.environments.forEach((env, i) => {
    environments.set(env.name, {
      name: env.name,
      after: env.after,
      soak: env.soak,
      freeze: compileFreeze(env.freeze),
      approvals: env.approvals !== undefined,
    });
    if (env.promoters !== undefined)
      promoters.set(env.name, compilePromoters(env.name, env.promoters, `environments[${i}].promoters`));
  });
  const issuerLinks = compileIssuerLinks(config.issuers ?? []);
  return {
    environments,
    promoters,
    approvals: compileApprovalRules(config.environments, issuerLinks),
    issuerLinks,
    maxWait: config.promotion.maxWait,
    promoterPolicies: (app, environment) => ({
      app,
      environment,
      appPipelines: appPipelines.get(app),
      promoters: promoters.get(environment),
    }),
  };
}
