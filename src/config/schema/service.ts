/** The service itself: `dev`, `server`, `log`, `store`, `keys`, and signing for pipelines. */
import { z } from "zod";
import { duration } from "../duration.ts";
import { d, hostPort, httpUrl, positiveInt } from "./base.ts";

/** `dev`: development mode. */
export const devSection = z
  .boolean()
  .default(false)
  .meta(
    d(
      "Development mode: a missing signing key is generated on start, and dev issuers (`issuers[].devKey`) are accepted. Never use in production.",
    ),
  );

/** `server`: the HTTP listener. */
export const serverSection = z
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
    jsonDepth: positiveInt
      .default(64)
      .meta(d("Deepest nesting of arrays and objects a JSON request body may have (400 beyond it).")),
    metricsListen: hostPort
      .optional()
      .meta(
        d(
          'Serve `/metrics` on a separate internal listener at this "host:port" (and not on `listen`). Metrics name credentials and refusal reasons: keep them off the public port.',
        ),
      ),
  })
  .prefault({})
  .meta(d("The HTTP listener."));

/** `log`: logging. */
export const logSection = z
  .strictObject({
    level: z
      .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
      .default("info")
      .meta(d("Least severe level written (JSON lines on stdout).")),
  })
  .prefault({})
  .meta(d("Logging."));

/** `store`: the database. */
export const storeSection = z
  .union([
    z.strictObject({ sqlite: z.string().min(1).meta(d("Path of the SQLite database file.")) }),
    z.strictObject({
      postgres: z.string().min(1).meta(d('A PostgreSQL connection URL, e.g. "${FERRY_DATABASE_URL}".')),
    }),
  ])
  .meta(d("Exactly one of `sqlite` (embedded default) or `postgres` (several replicas)."));

/** `keys`: Ferry's own keys. */
export const keysSection = z
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
  .meta(d("Ferry's own keys."));

/** `signing`: signing for pipelines with Ferry's key. */
export const signingSection = z
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
  .meta(d("Signing for pipelines (`POST /v1/signatures`) with Ferry's key."));
