import { z } from "zod";
import { anchoredRegex } from "../identity/matchers.ts";
import { fetchableUrlProblem } from "../identity/url-policy.ts";
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
    z.strictObject({
      regex: z
        .string()
        .min(1)
        .superRefine((source, ctx) => {
          try {
            anchoredRegex(source);
          } catch (err) {
            ctx.addIssue({ code: "custom", message: `invalid regex: ${(err as Error).message}` });
          }
        }),
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
      requests: positiveInt.default(60).meta(d("Exchanges allowed per identity (issuer, `sub`) per `per`.")),
      per: duration.prefault("1m").meta(d("The window; the budget refills evenly over it.")),
    })
    .prefault({})
    .meta(d("Per-identity rate limit of `POST /v1/token` (429 with Retry-After beyond it).")),
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
  aliases: z
    .array(z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'expected "host" or "host:port"'))
    .optional()
    .meta(d("Other `host[:port]` names image references use for this registry (e.g. `docker.io`).")),
  tokenRealms: z
    .array(httpUrl)
    .optional()
    .meta(
      d(
        "Bearer token endpoints on another origin that may receive this registry's credentials (e.g. `https://auth.docker.io/token`). A realm on the registry's own origin is always allowed; any other is refused.",
      ),
    ),
  blobRedirects: z
    .array(httpUrl)
    .optional()
    .meta(
      d(
        "Origins blob downloads may be redirected to (object storage, a CDN). Requests there never carry credentials; a redirect to any other host is refused.",
      ),
    ),
  insecure: z
    .boolean()
    .optional()
    .meta(
      d("Allow plain http to a registry that is not on a loopback address (credentials travel in clear)."),
    ),
});

const loopbackHost = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

const registries = z
  .array(registry)
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((reg, i) => {
      // An invalid URL is reported by its own schema; these checks need a parsed one.
      if (typeof reg?.url !== "string" || !URL.canParse(reg.url)) return;
      const url = new URL(reg.url);
      if (url.protocol === "http:" && !loopbackHost.test(url.hostname) && reg.insecure !== true) {
        ctx.addIssue({
          code: "custom",
          path: [i, "url"],
          message: "plain http is only allowed for loopback registries; use https, or set `insecure: true`",
        });
      }
      if (url.pathname !== "/" || url.search !== "") {
        ctx.addIssue({ code: "custom", path: [i, "url"], message: "expected a base URL with no path" });
      }
      for (const host of [url.host, ...(Array.isArray(reg.aliases) ? reg.aliases : [])]) {
        const first = seen.get(host);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [i, "url"],
            message: `registry host "${host}" is also registries[${first}]; each host names one registry`,
          });
        } else seen.set(host, i);
      }
    });
  })
  .default([])
  .meta(d("The only registries Ferry will contact: no request goes to any other host, even by redirect."));

const registryClient = z
  .strictObject({
    timeout: duration
      .prefault("30s")
      .meta(d("A registry request fails when nothing (headers or bytes) arrives for this long.")),
    retries: z
      .int()
      .min(0)
      .max(10)
      .default(3)
      .meta(
        d("Retries of a request that failed with 408, 429, 5xx or a connection error (jittered backoff)."),
      ),
    parallelism: positiveInt.default(4).meta(d("Transfers a copy runs at once.")),
    attestationMaxBytes: positiveInt
      .default(16 * 1024 * 1024)
      .meta(d("The largest signature, attestation or SBOM blob Ferry reads into memory, in bytes.")),
  })
  .prefault({})
  .meta(d("How Ferry talks to registries."));

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
          .superRefine((source, ctx) => {
            // Compiled exactly as verification compiles it (src/verify/authorities.ts), so a bad
            // pattern is a config error with its path, not a start-up failure.
            try {
              new RegExp(`^(?:${source})$`, "u");
            } catch (err) {
              ctx.addIssue({ code: "custom", message: `invalid regex: ${(err as Error).message}` });
            }
          })
          .optional()
          .meta(d("An anchored regex for the subject, instead of `subject` (matched as `^(?:…)$`).")),
        extensions: z
          .strictObject({
            sourceRepositoryUri: z.string().min(1).optional().meta(d("Fulcio 1.3.6.1.4.1.57264.1.12.")),
            sourceRepositoryIdentifier: z
              .string()
              .regex(/^\d+$/, "expected the repository's numeric id")
              .optional()
              .meta(
                d("The repository's immutable numeric id (Fulcio 1.3.6.1.4.1.57264.1.15); survives renames."),
              ),
            sourceRepositoryRef: z
              .string()
              .min(1)
              .optional()
              .meta(d("e.g. `refs/heads/main` (Fulcio 1.3.6.1.4.1.57264.1.14).")),
            buildSignerUri: z
              .string()
              .min(1)
              .optional()
              .meta(d("The workflow that signed (Fulcio 1.3.6.1.4.1.57264.1.9).")),
            runnerEnvironment: z
              .string()
              .min(1)
              .optional()
              .meta(d("e.g. `github-hosted` (Fulcio 1.3.6.1.4.1.57264.1.11).")),
          })
          .optional()
          .meta(d("Certificate extensions that must equal these values exactly.")),
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
      signature: z
        .strictObject({
          authorities: authorityRefs,
          count: positiveInt
            .default(1)
            .meta(d("How many distinct authorities of the list must have signed (default 1: any one).")),
          multiArch: z
            .enum(["index", "index-and-platforms"])
            .default("index")
            .meta(
              d(
                "For an image index: `index` needs a signature on the index digest itself; `index-and-platforms` also on every platform manifest it lists. A signature on a platform manifest never stands in for one on the index.",
              ),
            ),
        })
        .refine((s) => s.count <= s.authorities.length, {
          message: "count is larger than the number of authorities listed",
          path: ["count"],
        })
        .optional(),
      sbom: z
        .strictObject({
          authorities: authorityRefs,
          maxAge: duration
            .optional()
            .meta(d("Refuse an SBOM whose document creation time is older than this.")),
        })
        .optional(),
      provenance: z
        .strictObject({
          authorities: authorityRefs,
          builderId: z.string().min(1).optional().meta(d("The SLSA builder id, matched exactly.")),
          sourceRepository: z
            .string()
            .min(1)
            .optional()
            .meta(d("The source repository URL (a `git+` prefix and `.git` suffix are ignored).")),
          ref: z
            .string()
            .min(1)
            .optional()
            .meta(d("The source ref, e.g. `refs/heads/main`, matched exactly.")),
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
        previous: z
          .array(z.string().min(1))
          .default([])
          .meta(
            d(
              "Previous signing keys (public or private PEM files), still published in Ferry's JWKS after a rotation until tokens signed with them have expired.",
            ),
          ),
      })
      .meta(d("Ferry's own keys.")),
    issuers: z
      .array(issuer)
      .default([])
      .meta(d("OIDC issuers whose tokens Ferry accepts (exact `iss` match).")),
    registries,
    registryClient,
    signing: z
      .strictObject({
        annotate: z
          .boolean()
          .default(true)
          .meta(
            d(
              "Name the requesting pipeline (issuer, subject, repository, commit, run) in the optional annotations of the signatures Ferry makes.",
            ),
          ),
        maxAttestations: positiveInt
          .default(8)
          .meta(d("Most attestations one `POST /v1/signatures` may ask for.")),
        maxPredicateBytes: positiveInt
          .default(524_288)
          .meta(d("Largest predicate (its JSON) Ferry attests, in bytes; keep it below `server.bodyLimit`.")),
      })
      .prefault({})
      .meta(d("Signing for pipelines (`POST /v1/signatures`) with Ferry's key.")),
    trust: z
      .strictObject({
        trustedRoot: z
          .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
          .optional()
          .meta(d("Sigstore TrustedRoot JSON file(s). Default: the pinned public-good root.")),
        publicGood: z
          .boolean()
          .optional()
          .meta(
            d(
              "Also trust the pinned public-good root beside `trustedRoot` files. Default: true when no `trustedRoot` is given, false otherwise.",
            ),
          ),
        authorities: z
          .array(authority)
          .default([])
          .meta(d("Signers whose signatures and attestations Ferry trusts.")),
        timeout: duration
          .prefault("30s")
          .meta(d("A verification that takes longer is denied (reason `timeout`).")),
        cacheTtl: duration
          .prefault("5m")
          .meta(
            d(
              "How long a decision is reused for the same digest, policy and set of signatures and attestations.",
            ),
          ),
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
      if (cred.type === "ferry-jwt" && cred.aws !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["credentials", i, "aws"],
          message: "`aws` applies only to an aws-sts credential",
        });
      }
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
      for (const key of ["url", "jwksUri"] as const) {
        // A value that is not an http(s) URL at all already has its own problem.
        const value = iss[key];
        const problem =
          value === undefined || !/^https?:\/\//.test(value)
            ? undefined
            : fetchableUrlProblem(value, iss.allowInsecureHttp);
        if (problem !== undefined)
          ctx.addIssue({ code: "custom", path: ["issuers", i, key], message: problem });
      }
    });
  });

/** The config as written (before defaults and transforms). */
export type ConfigInput = z.input<typeof configSchema>;
/** The parsed config, durations in milliseconds, defaults filled in. */
export type FerryConfig = z.output<typeof configSchema>;
