import { type CompiledPolicy, compilePolicy, mismatchSummary, type RuleSpec } from "../identity/policy.ts";
import type { Principal } from "../identity/principal.ts";

/** `environments[].promoters` as written: pipeline identity rules and groups of people. */
export interface PromotersSpec {
  pipelines?: readonly RuleSpec[] | undefined;
  groups?: readonly string[] | undefined;
}

/** An environment's promoters, compiled once at config load. */
export interface CompiledPromoters {
  /** Narrows the app's pipelines; undefined: no pipeline may promote here. */
  pipelines: CompiledPolicy | undefined;
  /** People in any of these groups may promote (and roll back) here. */
  groups: ReadonlySet<string>;
}

/** Compiles one environment's `promoters` with the trust-policy compiler; `basePath` is `environments[i].promoters`. */
export function compilePromoters(envName: string, spec: PromotersSpec, basePath: string): CompiledPromoters {
  return {
    pipelines:
      spec.pipelines === undefined
        ? undefined
        : compilePolicy(`promoters of ${envName}`, spec.pipelines, `${basePath}.pipelines`),
    groups: new Set(spec.groups ?? []),
  };
}

/** Why a principal may not promote. Stable codes. */
export const PROMOTER_REFUSALS = [
  "not_app_pipeline",
  "not_environment_promoter",
  "ferry_minted_token",
  "not_in_promoter_group",
] as const;
export type PromoterRefusal = (typeof PROMOTER_REFUSALS)[number];

/** Whether a principal may promote the app into the environment, and by which rule or group. */
export type PromoterDecision =
  | { allowed: true; as: "pipeline"; appRule: number; promoterRule: number | undefined }
  | { allowed: true; as: "person"; group: string }
  | {
      allowed: false;
      reason: PromoterRefusal;
      message: string;
      /** For the log: per rule, the claims that did not match. */
      mismatches?: Record<string, unknown>[];
    };

/** The compiled policies one decision needs. */
export interface PromoterPolicies {
  app: string;
  environment: string;
  /** The app's compiled `apps[].pipelines` (from `compileTrustPolicies`). */
  appPipelines: CompiledPolicy | undefined;
  /** The environment's compiled `promoters`; undefined when it configures none. */
  promoters: CompiledPromoters | undefined;
}

/**
 * Who may promote: a pipeline of the app (its platform's own token matching `apps[].pipelines`),
 * narrowed by the environment's `promoters.pipelines` when it has `promoters`; or a person in one
 * of `promoters.groups` (so on-call staff can roll back). Ferry-minted tokens never promote: their
 * claims are Ferry's, not the platform's the rules are written against.
 */
export function mayPromote(principal: Principal, policies: PromoterPolicies): PromoterDecision {
  const where = `app ${policies.app} into ${policies.environment}`;
  if (principal.kind === "human") {
    const group = principal.groups.find((g) => policies.promoters?.groups.has(g));
    if (group !== undefined) return { allowed: true, as: "person", group };
    return {
      allowed: false,
      reason: "not_in_promoter_group",
      message: `people promote ${where} only through environments[].promoters.groups, and none of yours is listed`,
    };
  }
  if (principal.via !== "oidc")
    return {
      allowed: false,
      reason: "ferry_minted_token",
      message: "promote with the pipeline platform's own OIDC token, not a Ferry-minted credential",
    };
  const subject = { issuer: principal.issuer.name, claims: principal.claims };
  const appRule = policies.appPipelines?.match(subject);
  if (appRule === undefined)
    return {
      allowed: false,
      reason: "not_app_pipeline",
      message: `this pipeline is not one of app ${policies.app}'s pipelines (see apps[].pipelines)`,
      mismatches: policies.appPipelines ? mismatchSummary(policies.appPipelines.evaluate(subject)) : [],
    };
  if (policies.promoters === undefined)
    return { allowed: true, as: "pipeline", appRule, promoterRule: undefined };
  const promoterRule = policies.promoters.pipelines?.match(subject);
  if (promoterRule === undefined)
    return {
      allowed: false,
      reason: "not_environment_promoter",
      message: `this pipeline may not promote ${where} (see environments[].promoters.pipelines)`,
      mismatches: policies.promoters.pipelines
        ? mismatchSummary(policies.promoters.pipelines.evaluate(subject))
        : [],
    };
  return { allowed: true, as: "pipeline", appRule, promoterRule };
}
