/** Who Ferry believes: OIDC `issuers`, and the short-lived `credentials` they may obtain. */
import { z } from "zod";
import { duration } from "../duration.ts";
import { d, httpUrl, identityRule, name, positiveInt } from "./base.ts";

export const issuer = z
  .strictObject({
    name,
    url: httpUrl.meta(d("The issuer URL, matched exactly against the token's `iss` claim.")),
    jwksUri: httpUrl.optional().meta(d("The JWKS URL; when absent, it is read from OIDC discovery.")),
    audience: z.string().min(1).meta(d("The audience the token's `aud` must contain.")),
    algorithms: z
      .array(
        z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]),
      )
      .min(1)
      .default(["RS256"])
      .meta(d("The signature algorithms accepted from this issuer.")),
    maxTokenAge: duration.optional().meta(d("Refuse tokens whose `iat` is older than this.")),
    leeway: duration.prefault("60s").meta(d("Clock skew allowed on `exp`, `nbf` and `iat` (at most 5m).")),
    kind: z
      .enum(["pipeline", "human"])
      .default("pipeline")
      .meta(d("Whether tokens come from pipelines or people.")),
    groupsClaim: z
      .string()
      .optional()
      .meta(d("For human issuers: the claim that lists the person's groups.")),
    links: z
      .strictObject({
        github: z
          .string()
          .min(1)
          .optional()
          .meta(d("The claim holding the person's GitHub user id or login.")),
        gitlab: z
          .string()
          .min(1)
          .optional()
          .meta(d("The claim holding the person's GitLab user id or username.")),
      })
      .optional()
      .meta(
        d(
          "For human issuers: the claims (dotted paths) naming the person's CI accounts, compared with a pipeline's actor for separation of duties in approvals.",
        ),
      ),
    devKey: z
      .string()
      .min(1)
      .optional()
      .meta(
        d(
          "Dev mode only (`dev: true`; a config error otherwise): a dev issuer whose tokens (ES256) are checked with this ECDSA P-256 PEM key file instead of a JWKS, generated on first start; `ferry dev token` mints them. `url` is then only the `iss` they carry; `algorithms` and `jwksUri` do not apply.",
        ),
      ),
    requireJti: z
      .boolean()
      .default(true)
      .meta(d("Refuse tokens without a `jti` (needed for replay protection).")),
    allowInsecureHttp: z
      .boolean()
      .default(false)
      .meta(
        d("Allow plain http for this issuer's discovery and JWKS; only honoured for loopback addresses."),
      ),
    platform: z
      .enum(["github", "gitlab", "kubernetes", "buildkite", "circleci", "generic"])
      .optional()
      .meta(
        d(
          "Whose tokens these are: their claims are then checked by name and type, and policies linted. Default: guessed from `url`.",
        ),
      ),
    rateLimit: z
      .strictObject({
        requests: positiveInt
          .default(60)
          .meta(d("Exchanges allowed per identity (issuer, `sub`) per `per`.")),
        per: duration.prefault("1m").meta(d("The window; the budget refills evenly over it.")),
      })
      .prefault({})
      .meta(d("Per-identity rate limit of `POST /v1/token` (429 with Retry-After beyond it).")),
  })
  .superRefine((issuer, ctx) => {
    // A pipeline's CI account is its actor claim; links would let a pipeline token pass as a person.
    if (issuer.links !== undefined && issuer.kind !== "human")
      ctx.addIssue({
        code: "custom",
        path: ["links"],
        message: "links name a person's CI accounts: only a human issuer (kind: human) has them",
      });
  });

export const credential = z.strictObject({
  name: name.meta(d("The credential's name: the `audience` of a token exchange.")),
  environment: name,
  type: z.enum(["ferry-jwt", "aws-sts"]),
  ttl: duration.prefault("15m").meta(d("Lifetime of the issued credential.")),
  audience: z
    .string()
    .min(1)
    .optional()
    .meta(d("ferry-jwt: the `aud` of the minted token (default: the name).")),
  aws: z
    .strictObject({
      roleArn: z
        .string()
        .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, "expected an IAM role ARN"),
      region: z.string().min(1).default("us-east-1"),
      mode: z.enum(["assume-role", "web-identity"]).default("assume-role"),
      sessionTags: z
        .record(z.string(), z.string().min(1))
        .optional()
        .superRefine((tags, ctx) => {
          if (tags === undefined) return;
          const keys = Object.keys(tags);
          if (keys.length > 50)
            ctx.addIssue({ code: "custom", message: "STS accepts at most 50 session tags" });
          const seen = new Set<string>();
          for (const key of keys) {
            if (key.length > 128 || !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u.test(key) || /^aws:/i.test(key)) {
              ctx.addIssue({
                code: "custom",
                path: [key],
                message:
                  "a session tag key is 1-128 letters, digits, spaces or _.:/=+-@ and does not start with aws:",
              });
            }
            if (seen.has(key.toLowerCase()))
              ctx.addIssue({
                code: "custom",
                path: [key],
                message: "tag keys are case-insensitive: duplicate",
              });
            seen.add(key.toLowerCase());
          }
        })
        .meta(d("Session tag key → claim path (dotted for nested claims); at most 50 tags.")),
      sessionPolicy: z
        .string()
        .max(2048)
        .optional()
        .superRefine((policy, ctx) => {
          if (policy === undefined) return;
          try {
            JSON.parse(policy);
          } catch {
            ctx.addIssue({ code: "custom", message: "the session policy must be an IAM policy in JSON" });
          }
        })
        .meta(d("An inline IAM session policy (JSON, at most 2048 characters) that narrows the role.")),
      maxSessionDuration: duration.optional(),
      endpoint: httpUrl.optional().meta(d("Override the STS endpoint (tests, VPC endpoints).")),
    })
    .optional(),
  allow: z
    .array(identityRule)
    .min(1)
    .meta(d("Identities allowed to obtain this credential; any one suffices.")),
});
