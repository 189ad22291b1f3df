/**
 * Break-glass: who may ask for a promotion that skips order, soak, freeze and approvals (never
 * verification), and what such a request must carry. Pure: the rules are compiled once at config
 * load with the promoters' compiler; the service asks {@link mayBreakGlass} per request.
 */
import { mismatchSummary } from "../../identity/policy.ts";
import type { Principal } from "../../identity/principal.ts";
import { type CompiledPromoters, compilePromoters, type PromotersSpec } from "../promoters.ts";

/** The longest justification accepted, in characters. */
export const JUSTIFICATION_MAX = 1000;

/** `environments[].breakGlass` as written (after the config schema's defaults). */
export interface BreakGlassSpec extends PromotersSpec {
  /** Milliseconds within which an approver should review a break-glass promotion. */
  reviewWithin: number;
}

/** One environment's break-glass rule, compiled once at config load. */
export interface CompiledBreakGlass {
  environment: string;
  /** Who may break glass: the same shape, and compiler, as `promoters`. */
  who: CompiledPromoters;
  reviewWithin: number;
}

/** Compiles every environment's `breakGlass` (environments without one are absent from the map). */
export function compileBreakGlass(
  environments: readonly { name: string; breakGlass?: BreakGlassSpec | undefined }[],
): ReadonlyMap<string, CompiledBreakGlass> {
  const out = new Map<string, CompiledBreakGlass>();
  environments.forEach((env, i) => {
    if (env.breakGlass === undefined) return;
    const { reviewWithin, ...spec } = env.breakGlass;
    out.set(env.name, {
      environment: env.name,
      who: compilePromoters(env.name, spec, `environments[${i}].breakGlass`),
      reviewWithin,
    });
  });
  return out;
}

/** Why a break-glass request is refused. Stable codes (the `reason` of the 403 or 400). */
export const BREAK_GLASS_REFUSALS = [
  "break_glass_not_configured",
  "break_glass_not_allowed",
  "break_glass_justification_missing",
] as const;
export type BreakGlassRefusal = (typeof BREAK_GLASS_REFUSALS)[number];

/** Whether a principal may break glass, and by which rule or group. */
export type BreakGlassDecision =
  | { allowed: true; as: "person"; group: string }
  | { allowed: true; as: "pipeline"; rule: number }
  | {
      allowed: false;
      reason: BreakGlassRefusal;
      message: string;
      /** For the log: per rule, the claims that did not match. */
      mismatches?: Record<string, unknown>[];
    };

/**
 * May `principal` break glass into the environment? `rules` undefined: the environment has no
 * `breakGlass` (`break_glass_not_configured`). A person needs one of `breakGlass.groups`, a
 * pipeline (its platform's own token) one of `breakGlass.pipelines`. This only narrows: the caller
 * must also pass `mayPromote`, so break-glass never lets in anyone who could not promote there.
 */
export function mayBreakGlass(
  principal: Principal,
  environment: string,
  rules: CompiledBreakGlass | undefined,
): BreakGlassDecision {
  if (rules === undefined)
    return {
      allowed: false,
      reason: "break_glass_not_configured",
      message: `${environment} has no break-glass rule (environments[].breakGlass)`,
    };
  if (principal.kind === "human") {
    const group = principal.groups.find((g) => rules.who.groups.has(g));
    if (group !== undefined) return { allowed: true, as: "person", group };
    return {
      allowed: false,
      reason: "break_glass_not_allowed",
      message: `none of your groups may break glass into ${environment} (environments[].breakGlass.groups)`,
    };
  }
  const subject = { issuer: principal.issuer.name, claims: principal.claims };
  const rule = principal.via === "oidc" ? rules.who.pipelines?.match(subject) : undefined;
  if (rule !== undefined) return { allowed: true, as: "pipeline", rule };
  return {
    allowed: false,
    reason: "break_glass_not_allowed",
    message: `this pipeline may not break glass into ${environment} (environments[].breakGlass.pipelines)`,
    ...(rules.who.pipelines && principal.via === "oidc"
      ? { mismatches: mismatchSummary(rules.who.pipelines.evaluate(subject)) }
      : {}),
  };
}

/**
 * The justification as stored: trimmed, non-empty, at most {@link JUSTIFICATION_MAX} characters;
 * undefined when it is empty or only blanks (the caller refuses with `break_glass_justification_missing`).
 */
export function justificationOf(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed === "" || trimmed.length > JUSTIFICATION_MAX ? undefined : trimmed;
}
