import { FerryError } from "../common/errors.ts";

/** Why a rollback request is refused. Stable codes. */
export const ROLLBACK_REFUSALS = [
  "rollback_reason_missing",
  "rollback_never_current",
  "rollback_already_current",
] as const;
export type RollbackRefusal = (typeof ROLLBACK_REFUSALS)[number];

/** What the store knows of the target environment's digests for the app. */
export interface TargetHistory {
  /** The digest current in the target now, if any. */
  current?: string | undefined;
  /** Every digest that was ever current in the target (the current one included or not). */
  previous: readonly string[];
}

/** The parts of a promotion request a rollback check reads. */
export interface RollbackRequest {
  digest: string;
  rollback: boolean;
  reason?: string | undefined;
}

/** Whether a request may go on as a rollback (or is not one). */
export type RollbackDecision = { ok: true } | { ok: false; reason: RollbackRefusal; message: string };

/**
 * A rollback (`rollback: true`) moves the target back to a digest that was current there before,
 * and says why: it skips the `order` and `soak` gates (the digest already ran there), never
 * verification. Refused without a reason, for a digest never current in the target, and for the
 * digest current now (nothing would move).
 */
export function checkRollback(request: RollbackRequest, target: TargetHistory): RollbackDecision {
  if (!request.rollback) return { ok: true };
  if (request.reason === undefined || request.reason.trim() === "")
    return { ok: false, reason: "rollback_reason_missing", message: "a rollback needs a `reason`" };
  if (request.digest === target.current)
    return {
      ok: false,
      reason: "rollback_already_current",
      message: `${request.digest} is already current there`,
    };
  if (!target.previous.includes(request.digest))
    return {
      ok: false,
      reason: "rollback_never_current",
      message: `${request.digest} was never current there; a rollback only returns to an earlier digest`,
    };
  return { ok: true };
}

/** The error a caller sees for a refused rollback: 400 for a missing reason, 409 for the target's history. */
export function rollbackRefusalError(
  refusal: Extract<RollbackDecision, { ok: false }>,
): FerryError<"validation_failed" | "conflict"> {
  const code = refusal.reason === "rollback_reason_missing" ? "validation_failed" : "conflict";
  return new FerryError(code, refusal.message, { extra: { reason: refusal.reason } });
}

/**
 * The repository a promotion copies from, for the `source` gate: the app's repository in `after`;
 * for an environment with no `after` (the pipeline pushed there), or a rollback (the digest is
 * already there), the target's own. Undefined when the app has no repository for it.
 */
export function sourceRepository(
  images: Readonly<Record<string, string>>,
  env: { name: string; after?: string | undefined },
  rollback: boolean,
): string | undefined {
  const from = rollback || env.after === undefined ? env.name : env.after;
  return Object.hasOwn(images, from) ? images[from] : undefined;
}
