import { FerryError } from "../../src/common/errors.ts";
import { isIdentityError } from "../../src/identity/errors.ts";

function ferryCode(err: unknown): string {
  return err instanceof FerryError ? err.code : `not a FerryError: ${String(err)}`;
}

/**
 * The `FerryError` code a call or promise failed with, or undefined when it succeeded: tests assert
 * on codes, never on messages. Anything other than a `FerryError` yields a text that matches no code.
 */
export function codeOf(promise: Promise<unknown>): Promise<string | undefined>;
export function codeOf(fn: () => unknown): string | undefined;
export function codeOf(
  subject: Promise<unknown> | (() => unknown),
): Promise<string | undefined> | string | undefined {
  if (typeof subject !== "function") {
    return subject.then(
      () => undefined,
      (err: unknown) => ferryCode(err),
    );
  }
  try {
    subject();
  } catch (err) {
    return ferryCode(err);
  }
  return undefined;
}

/**
 * The `IdentityError` reason a promise was refused with, or `resolved` when it succeeded; any other
 * error is rethrown.
 */
export async function identityReasonOf(promise: Promise<unknown>, resolved: string): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isIdentityError(err)) return err.reason;
    throw err;
  }
  return resolved;
}
