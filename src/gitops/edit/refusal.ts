/** Why an edit was refused; the step fails with this reason and writes nothing. */
export type RefusalReason =
  | "gitops_path_missing"
  | "gitops_unsafe_edit"
  | "gitops_parse_failed"
  | "gitops_ambiguous";

/**
 * Thrown inside the editing core and turned into a `refused` result by `applyEdit`, so the planners
 * read straight through. Never escapes the module.
 */
export class Refusal extends Error {
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.name = "Refusal";
    this.reason = reason;
  }
}
