import { z } from "zod";
import { duration } from "./duration.ts";
import { describeValue } from "./problems.ts";

const d = (description: string) => ({ description });

/** A positive integer whose every error says so ("expected a positive integer, got the string \"two\""). */
const positiveInt = z
  .int({
    error: (iss) =>
      iss.input === undefined
        ? "is required"
        : `expected a positive integer, got ${describeValue(iss.input)}`,
  })
  .positive({ error: (iss) => `expected a positive integer, got ${describeValue(iss.input)}` });

const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "expected a lower-case name of letters, digits and dashes")
  .meta(d("A lower-case name: letters, digits and dashes, at most 63 characters."));

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected "host:port", e.g. "127.0.0.1:8080"');

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/** A claim matcher: exact string, any-of list, or an explicit (always anchored) glob or regex. */
export const claimMatcher = z
  .union([
    z.string(),
    z.number(),
    z.boolean(),
    z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
    z.strictObject({ glob: z.string().min(1) }),
    z.strictObject({ regex: z.string().min(1) }),
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

const identityRule = z.strictObject({
  issuer: name.meta(d("The `name` of a registered issuer.")),
  claims: claimRules.default({}),
});

const issuer = z.strictObject({
  name,
  url: httpUrl.meta(d("The issuer URL, matched exactly against the token's `iss` claim.")),
  jwksUri: httpUrl.optional().meta(d("The JWKS URL; when absent, it is read from OIDC discovery.")),
  audience: z.string().min(1).meta(d("The audience the token's `aud` must contain.")),
  algorithms: z
    .array(z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]))
    .min(1)
    .default(["RS256"])
    .meta(d("The signature algorithms accepted from this issuer.")),
  maxTokenAge: duration.optional().meta(d("Refuse tokens whose `iat` is older than this.")),
  leeway: duration.prefault("60s").meta(d("Clock skew allowed on `exp`, `nbf` and `iat` (at most 5m).")),
  kind: z
    .enum(["pipeline", "human"])
    .default("pipeline")
    .meta(d("Whether tokens come from pipelines or people.")),
  groupsClaim: z.string().optional().meta(d("For human issuers: the claim that lists the person's groups.")),
  requireJti: z
    .boolean()
    .default(true)
    .meta(d("Refuse tokens without a `jti` (needed for replay protection).")),
  allowInsecureHttp: z
    .boolean()
    .default(false)
    .meta(d("Allow plain http for this issuer's discovery and JWKS; only honoured for loopback addresses.")),
});

const registry = z.strictObject({
  url: httpUrl.meta(
    d("The registry's base URL, e.g. `https://registry.example.com` or `http://127.0.0.1:5000`."),
  ),
  auth: z
    .strictObject({
      username: z.string().min(1),
      password: z.string().min(1).meta(d("Use `${VAR}` so the secret stays out of the file.")),
    })
    .optional()
    .meta(d("Credentials for basic auth or the bearer token flow. Anonymous when absent.")),
});

const authority = z
  .strictObject({
    name,
    keyless: z
      .strictObject({
        issuer: z.string().min(1).meta(d("The OIDC issuer in the certificate, matched exactly.")),
        subject: z.string().min(1).optional().meta(d("The certificate's subject (SAN), matched exactly.")),
        subjectRegex: z
          .string()
          .min(1)
          .optional()
          .meta(d("An anchored regex for the subject, instead of `subject`.")),
        extensions: z
          .record(z.string(), z.string())
          .optional()
          .meta(d("Certificate extensions that must equal these values (e.g. sourceRepositoryURI).")),
      })
      .optional()
      .meta(d("Keyless (Fulcio certificate) signer identity.")),
    key: z
      .string()
      .min(1)
      .optional()
      .meta(d("A public key PEM file, or the word `ferry` for Ferry's own signing key.")),
  })
  .refine((a) => (a.keyless === undefined) !== (a.key === undefined), {
    message: "an authority has exactly one of `keyless` or `key`",
  })
  .refine((a) => !a.keyless || (a.keyless.subject === undefined) !== (a.keyless.subjectRegex === undefined), {
    message: "a keyless authority has exactly one of `subject` or `subjectRegex`",
    path: ["keyless"],
  });

const authorityRefs = z.array(name).min(1).meta(d("Names of `trust.authorities`; any one of them suffices."));

const environment = z.strictObject({
  name,
  after: name.optional().meta(d("The environment a digest must have reached before this one.")),
  soak: duration.optional().meta(d("How long a digest must have been in `after` before promotion here.")),
  freeze: z
    .array(z.strictObject({ from: z.iso.datetime({ offset: true }), to: z.iso.datetime({ offset: true }) }))
    .optional()
    .meta(d("Windows in which promotion into this environment is refused (ISO 8601 with offset).")),
  require: z
    .strictObject({
      signature: z.strictObject({ authorities: authorityRefs }).optional(),
      sbom: z.strictObject({ authorities: authorityRefs, maxAge: duration.optional() }).optional(),
      provenance: z
        .strictObject({
          authorities: authorityRefs,
          builderId: z.string().min(1).optional(),
          sourceRepository: z.string().min(1).optional(),
        })
        .optional(),
    })
    .prefault({})
    .meta(d("What a digest must carry to enter this environment.")),
  approvals: z
    .strictObject({
      count: positiveInt.meta(d("How many distinct approvers are needed.")),
      groups: z.array(z.string().min(1)).min(1).meta(d("Approvers must belong to one of these groups.")),
      expiresAfter: duration.prefault("24h").meta(d("How long an approval stays valid.")),
    })
    .optional(),
});

const app = z.strictObject({
  name,
  images: z
    .record(name, z.string().min(1))
    .meta(d("Repository of this app per environment name, e.g. `{staging: 127.0.0.1:5000/staging/web}`.")),
  pipelines: z.array(identityRule).default([]).meta(d("Pipeline identities that act for this app.")),
});

const credential = z.strictObject({
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
      sessionTags: z.record(z.string(), z.string()).optional().meta(d("Session tag key → claim path.")),
      sessionPolicy: z.string().max(2048).optional(),
      maxSessionDuration: duration.optional(),
      endpoint: httpUrl.optional().meta(d("Override the STS endpoint (tests, VPC endpoints).")),
    })
    .optional(),
  allow: z
    .array(identityRule)
    .min(1)
    .meta(d("Identities allowed to obtain this credential; any one suffices.")),
});

/** The whole `ferry.yaml`. Names here are the contract documented in DESIGN.md. */
export const configSchema = z
  .strictObject({
    dev: z
      .boolean()
      .default(false)
      .meta(d("Development mode: a missing signing key is generated on start. Never use in production.")),
    server: z
      .strictObject({
        listen: hostPort.default("127.0.0.1:8080").meta(d('Address to listen on, "host:port".')),
        publicUrl: httpUrl
          .optional()
          .meta(
            d("The URL clients use to reach Ferry; the `iss` of tokens Ferry mints. Default: from `listen`."),
          ),
        bodyLimit: positiveInt.default(1_048_576).meta(d("Largest accepted request body, in bytes.")),
        shutdownGrace: duration.prefault("10s").meta(d("How long in-flight requests may drain on SIGTERM.")),
        trustProxy: z.boolean().default(false).meta(d("Trust X-Forwarded-* headers from a reverse proxy.")),
      })
      .prefault({})
      .meta(d("The HTTP listener.")),
    log: z
      .strictObject({
        level: z
          .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
          .default("info")
          .meta(d("Least severe level written (JSON lines on stdout).")),
      })
      .prefault({})
      .meta(d("Logging.")),
    store: z
      .union([
        z.strictObject({ sqlite: z.string().min(1).meta(d("Path of the SQLite database file.")) }),
        z.strictObject({
          postgres: z.string().min(1).meta(d('A PostgreSQL connection URL, e.g. "${FERRY_DATABASE_URL}".')),
        }),
      ])
      .meta(d("Exactly one of `sqlite` (embedded default) or `postgres` (several replicas).")),
    keys: z
      .strictObject({
        signing: z.string().min(1).meta(d("Ferry's ECDSA P-256 signing key, a PKCS#8 PEM file.")),
      })
      .meta(d("Ferry's own keys.")),
    issuers: z
      .array(issuer)
      .default([])
      .meta(d("OIDC issuers whose tokens Ferry accepts (exact `iss` match).")),
    registries: z.array(registry).default([]).meta(d("The only registries Ferry will contact.")),
    trust: z
      .strictObject({
        trustedRoot: z
          .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
          .optional()
          .meta(d("Sigstore TrustedRoot JSON file(s). Default: the pinned public-good root.")),
        authorities: z
          .array(authority)
          .default([])
          .meta(d("Signers whose signatures and attestations Ferry trusts.")),
      })
      .prefault({})
      .meta(d("What Ferry trusts when it verifies artifacts.")),
    environments: z
      .array(environment)
      .default([])
      .meta(d("Deployment environments in promotion order, each with what a digest needs to enter it.")),
    apps: z
      .array(app)
      .default([])
      .meta(d("Applications: their repositories per environment and their pipelines.")),
    credentials: z
      .array(credential)
      .default([])
      .meta(d("Short-lived credentials that pipelines obtain through `POST /v1/token`.")),
  })
  .superRefine((config, ctx) => {
    const unique = (items: { name: string }[], key: string) => {
      const seen = new Map<string, number>();
      items.forEach((item, i) => {
        const first = seen.get(item.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [key, i, "name"],
            message: `duplicate name "${item.name}" (also ${key}[${first}]); names must be unique`,
          });
        } else seen.set(item.name, i);
      });
      return new Set(seen.keys());
    };
    const issuers = unique(config.issuers, "issuers");
    const environments = unique(config.environments, "environments");
    const authorities = unique(config.trust.authorities, "trust.authorities");
    unique(config.apps, "apps");
    unique(config.credentials, "credentials");

    const known = (set: Set<string>, value: string, path: (string | number)[], what: string) => {
      if (!set.has(value)) {
        const choices = [...set].join(", ") || "none are defined";
        ctx.addIssue({ code: "custom", path, message: `unknown ${what} "${value}" (known: ${choices})` });
      }
    };
    config.environments.forEach((env, i) => {
      if (env.after !== undefined)
        known(environments, env.after, ["environments", i, "after"], "environment");
      for (const [check, rule] of Object.entries(env.require)) {
        rule?.authorities.forEach((a, j) => {
          known(authorities, a, ["environments", i, "require", check, "authorities", j], "authority");
        });
      }
    });
    config.apps.forEach((app, i) => {
      for (const envName of Object.keys(app.images)) {
        known(environments, envName, ["apps", i, "images", envName], "environment");
      }
      app.pipelines.forEach((p, j) => {
        known(issuers, p.issuer, ["apps", i, "pipelines", j, "issuer"], "issuer");
      });
    });
    config.credentials.forEach((cred, i) => {
      known(environments, cred.environment, ["credentials", i, "environment"], "environment");
      cred.allow.forEach((rule, j) => {
        known(issuers, rule.issuer, ["credentials", i, "allow", j, "issuer"], "issuer");
      });
      if (cred.type === "aws-sts" && cred.aws === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["credentials", i, "aws"],
          message: "an aws-sts credential needs `aws`",
        });
      }
    });
    config.issuers.forEach((iss, i) => {
      if (iss.leeway > 300_000) {
        ctx.addIssue({ code: "custom", path: ["issuers", i, "leeway"], message: "leeway is at most 5m" });
      }
    });
  });

/** The config as written (before defaults and transforms). */
export type ConfigInput = z.input<typeof configSchema>;
/** The parsed config, durations in milliseconds, defaults filled in. */
export type FerryConfig = z.output<typeof configSchema>;
