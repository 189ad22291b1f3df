import type { FerryConfig } from "../config/schema.ts";
import { detectPlatform, type Platform } from "./claims.ts";
import { type CompiledPolicy, compilePolicy } from "./policy.ts";
import { lintRule, type PolicyWarning } from "./policy-lint.ts";

/** Every trust policy of a config, compiled once, and what the linter found. */
export interface TrustPolicies {
  /** A credential's `allow`, by credential name. */
  credentials: ReadonlyMap<string, CompiledPolicy>;
  /** An app's `pipelines`, by app name (used by the endpoints that act for an app). */
  apps: ReadonlyMap<string, CompiledPolicy>;
  warnings: PolicyWarning[];
}

/** The platform of each configured issuer: its `platform`, or a guess from its URL. */
export function issuerPlatforms(config: Pick<FerryConfig, "issuers">): Map<string, Platform> {
  return new Map(config.issuers.map((i) => [i.name, i.platform ?? detectPlatform(i.url)]));
}

/**
 * Production-like environments: named `prod…`, guarded by approvals, or the last of a promotion
 * chain (something comes before it and nothing after it).
 */
export function productionEnvironments(config: Pick<FerryConfig, "environments">): Set<string> {
  const before = new Set(config.environments.flatMap((e) => (e.after === undefined ? [] : [e.after])));
  return new Set(
    config.environments
      .filter(
        (e) =>
          /^prod/i.test(e.name) ||
          e.approvals !== undefined ||
          (e.after !== undefined && !before.has(e.name)),
      )
      .map((e) => e.name),
  );
}

/** Compiles the credentials' and apps' policies of a validated config and lints them. */
export function compileTrustPolicies(
  config: Pick<FerryConfig, "issuers" | "environments" | "credentials" | "apps">,
): TrustPolicies {
  const platforms = issuerPlatforms(config);
  const production = productionEnvironments(config);
  const warnings: PolicyWarning[] = [];
  const credentials = new Map<string, CompiledPolicy>();
  config.credentials.forEach((cred, i) => {
    const base = `credentials[${i}].allow`;
    credentials.set(cred.name, compilePolicy(`credential ${cred.name}`, cred.allow, base));
    const context = { platforms, production: production.has(cred.environment) };
    cred.allow.forEach((rule, j) => {
      warnings.push(...lintRule(rule, `${base}[${j}]`, context));
    });
  });
  const apps = new Map<string, CompiledPolicy>();
  config.apps.forEach((app, i) => {
    const base = `apps[${i}].pipelines`;
    apps.set(app.name, compilePolicy(`app ${app.name}`, app.pipelines, base));
    app.pipelines.forEach((rule, j) => {
      warnings.push(...lintRule(rule, `${base}[${j}]`, { platforms, production: false }));
    });
  });
  return { credentials, apps, warnings };
}
