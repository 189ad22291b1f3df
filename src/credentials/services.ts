import { readFileSync } from "node:fs";
import type { STSClientConfig } from "@aws-sdk/client-sts";
import { Counter, type Registry } from "prom-client";
import type { AuditSink } from "../audit/log.ts";
import { type Clock, systemClock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import { type Rate, RateLimiter } from "../common/rate-limit.ts";
import { StartupError } from "../common/startup-error.ts";
import type { FerryConfig } from "../config/schema.ts";
import { loadDevIssuerKey } from "../dev/issuer-key.ts";
import type { JsonFetcher } from "../identity/http-fetch.ts";
import { registeredIssuers } from "../identity/issuers.ts";
import type { JwksTiming, KeySource } from "../identity/jwks.ts";
import type { PolicyWarning } from "../identity/policy-lint.ts";
import { FERRY_ISSUER_NAME } from "../identity/principal.ts";
import { type ReplayGuard, StoreReplayGuard } from "../identity/replay.ts";
import { compileTrustPolicies, type TrustPolicies } from "../identity/trust-policies.ts";
import { createTokenVerifier, type TokenVerifier } from "../identity/verifier.ts";
import type { SigningKey } from "../signing/keys.ts";
import type { Store } from "../store/store.ts";
import { StoreExchangeRecorder } from "./audit.ts";
import { AwsStsMinter } from "./aws-sts.ts";
import { createTokenExchangeService, type TokenExchangeService } from "./exchange.ts";
import { FerryJwtMinter } from "./ferry-jwt.ts";
import { createFerryKeySet, FERRY_TOKEN_ALG, type FerryKeySet } from "./keyset.ts";

/** What {@link createIdentityServices} needs from the composition root. */
export interface IdentityServiceDeps {
  config: Pick<FerryConfig, "issuers" | "environments" | "credentials" | "apps"> & {
    keys: Pick<FerryConfig["keys"], "previous">;
    /** `dev`: dev issuers (`issuers[].devKey`) are refused without it. */
    dev?: boolean;
  };
  /** `server.publicUrl`: Ferry's issuer URL and the audience of Ferry-minted tokens for its own API. */
  publicUrl: string;
  store: Store;
  signingKey: SigningKey;
  logger: Logger;
  /** Where each token exchange is also appended (a `token_exchange` entry); none when absent. */
  audit?: AuditSink;
  /** Registry for `ferry_token_exchanges_total`. */
  metrics?: Registry;
  /** Ferry's AWS identity for AssumeRole; default: the SDK's default credential chain. */
  awsCredentials?: STSClientConfig["credentials"];
  fetcher?: JsonFetcher;
  jwksTiming?: Partial<JwksTiming>;
  /**
   * The one clock of verification, JWKS caching, rate limits, minting and audit times (tests pass a
   * `FakeClock`); default: the system clock. The replay guard's purge still decides by the database's.
   */
  clock?: Clock;
}

/** Identity and credentials, wired: what server.ts mounts and what later features use. */
export interface IdentityServices {
  keys: FerryKeySet;
  policies: TrustPolicies;
  warnings: PolicyWarning[];
  /** Verifies subject tokens of exchanges: registered issuers only. */
  exchangeVerifier: TokenVerifier;
  /** Verifies bearer tokens on `/v1/*`: registered issuers and Ferry's own tokens. */
  apiVerifier: TokenVerifier;
  replay: ReplayGuard;
  exchange: TokenExchangeService;
}

/** Leeway on Ferry's own tokens between replicas. */
const FERRY_LEEWAY_MS = 60_000;

/** Wires the real graph: JWKS caches, verifiers, replay guard and audit in the store, minters, policies. */
export async function createIdentityServices(deps: IdentityServiceDeps): Promise<IdentityServices> {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const previous = config.keys.previous.map((file) => {
    // Paths are already absolute: load.ts resolves them against the config file's folder.
    return { pem: readFileSync(file, "utf8"), source: `keys.previous (${file})` };
  });
  const keys = await createFerryKeySet(deps.signingKey, previous);
  const policies = compileTrustPolicies(config);
  const registered = registeredIssuers(config.issuers, {
    fetcher: deps.fetcher,
    clock,
    timing: deps.jwksTiming,
    logger: deps.logger,
    devKeys: await devIssuerKeys(config, deps.logger),
  });
  const ferryIssuer = {
    name: FERRY_ISSUER_NAME,
    url: deps.publicUrl,
    audience: deps.publicUrl,
    algorithms: [FERRY_TOKEN_ALG],
    leewayMs: FERRY_LEEWAY_MS,
    requireJti: true,
    kind: "pipeline" as const,
    platform: "generic" as const,
    keys,
  };
  const exchangeVerifier = createTokenVerifier(registered, { clock });
  const apiVerifier = createTokenVerifier(
    registered.some((i) => i.url === deps.publicUrl) ? registered : [...registered, ferryIssuer],
    { clock },
  );
  const replay = new StoreReplayGuard(deps.store, { clock });
  const rates = new Map<string, Rate>(
    config.issuers.map((i) => [i.url, { requests: i.rateLimit.requests, perMs: i.rateLimit.per }]),
  );
  const outcomes = deps.metrics
    ? new Counter({
        name: "ferry_token_exchanges_total",
        help: "Token exchanges by credential, decision and reason",
        labelNames: ["credential", "decision", "reason"] as const,
        registers: [deps.metrics],
      })
    : undefined;
  const exchange = createTokenExchangeService({
    verifier: exchangeVerifier,
    replay,
    recorder: new StoreExchangeRecorder(deps.store.db, deps.audit),
    limiter: new RateLimiter({ clock }),
    rates,
    credentials: new Map(config.credentials.map((c) => [c.name, c])),
    policies: policies.credentials,
    minters: {
      "ferry-jwt": new FerryJwtMinter({ keys, issuer: deps.publicUrl, clock }),
      "aws-sts": new AwsStsMinter({ credentials: deps.awsCredentials, clock }),
    },
    logger: deps.logger,
    clock,
    onOutcome: (credential, decision, reason) => outcomes?.inc({ credential, decision, reason }),
  });
  return { keys, policies, warnings: policies.warnings, exchangeVerifier, apiVerifier, replay, exchange };
}

/**
 * The keys of the dev issuers (`issuers[].devKey`), generated on first start. Refused outside dev
 * mode even if the schema let one through: whoever reads the file mints accepted tokens. Each start
 * says so at warn.
 */
async function devIssuerKeys(
  config: IdentityServiceDeps["config"],
  logger: Logger,
): Promise<Map<string, KeySource>> {
  const keys = new Map<string, KeySource>();
  for (const [i, issuer] of config.issuers.entries()) {
    if (issuer.devKey === undefined) continue;
    const path = `issuers[${i}].devKey`;
    if (config.dev !== true)
      throw new StartupError([{ path, message: "a dev issuer is accepted only with `dev: true`" }]);
    const { key, generated } = loadDevIssuerKey(issuer.devKey, path);
    keys.set(issuer.name, await createFerryKeySet(key));
    logger.warn(
      { issuer: issuer.name, iss: issuer.url, keyId: key.id, file: issuer.devKey, generated },
      "dev mode: accepting tokens of a dev issuer (`ferry dev token` mints them); never expose this server",
    );
  }
  return keys;
}
