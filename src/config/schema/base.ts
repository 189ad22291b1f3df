/** Building blocks every part of the config schema uses: names, numbers, URLs, claim rules. */
import { z } from "zod";
import { anchoredRegExp } from "../../common/patterns.ts";
import { describeValue } from "../problems.ts";

export const d = (description: string) => ({ description });

/** A positive integer whose every error says so ("expected a positive integer, got the string \"two\""). */
export const positiveInt = z
  .int({
    error: (iss) =>
      iss.input === undefined
        ? "is required"
        : `expected a positive integer, got ${describeValue(iss.input)}`,
  })
  .positive({ error: (iss) => `expected a positive integer, got ${describeValue(iss.input)}` });

export const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "expected a lower-case name of letters, digits and dashes")
  .meta(d("A lower-case name: letters, digits and dashes, at most 63 characters."));

export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected "host:port", e.g. "127.0.0.1:8080"');

export const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/**
 * A pattern that must match whole values: checked by compiling it exactly as the policy will
 * ({@link anchoredRegExp}), so a bad or escaping pattern is a config error with its path, not a
 * start-up failure or a policy that matches anything.
 */
export const anchoredPattern = z
  .string()
  .min(1)
  .superRefine((source, ctx) => {
    try {
      anchoredRegExp(source);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `invalid regex: ${(err as Error).message}` });
    }
  });

/** A claim matcher: exact string, any-of list, or an explicit (always anchored) glob or regex. */
export const claimMatcher = z
  .union([
    z.string(),
    z.number(),
    z.boolean(),
    z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
    z.strictObject({ glob: z.string().min(1) }),
    z.strictObject({
      regex: anchoredPattern,
    }),
  ])
  .meta(
    d(
      "A string or number is an exact match; a list is any-of exact; `{glob}` and `{regex}` are explicit and always anchored.",
    ),
  );

/** Claims to match, by claim name; nested claims use a dotted path in quotes. */
export const claimRules = z
  .record(z.string().min(1), claimMatcher)
  .meta(d('Claims to match by name. Nested claims use dotted paths in quotes ("kubernetes.io.namespace").'));

export const identityRule = z.strictObject({
  issuer: name.meta(d("The `name` of a registered issuer.")),
  claims: claimRules.default({}),
});
