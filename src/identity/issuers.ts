import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import type { FerryConfig } from "../config/schema.ts";
import { detectPlatform } from "./claims.ts";
import { httpJsonFetcher, type JsonFetcher } from "./http-fetch.ts";
import { type JwksTiming, RemoteJwks } from "./jwks.ts";
import type { TrustedIssuer } from "./verifier.ts";

/** What building the registered issuers needs: the HTTP port and, for tests, a clock and cache timing. */
export interface IssuerDeps {
  fetcher?: JsonFetcher;
  clock?: Clock;
  timing?: Partial<JwksTiming>;
  /** Where a failed JWKS or discovery fetch is reported (at warn, with its cause). */
  logger?: Logger;
}

/** The issuers of `ferry.yaml`, each with its own JWKS cache. */
export function registeredIssuers(issuers: FerryConfig["issuers"], deps: IssuerDeps = {}): TrustedIssuer[] {
  const fetcher = deps.fetcher ?? httpJsonFetcher;
  return issuers.map((issuer) => ({
    name: issuer.name,
    url: issuer.url,
    audience: issuer.audience,
    algorithms: issuer.algorithms,
    leewayMs: issuer.leeway,
    maxTokenAgeMs: issuer.maxTokenAge,
    requireJti: issuer.requireJti,
    kind: issuer.kind,
    platform: issuer.platform ?? detectPlatform(issuer.url),
    groupsClaim: issuer.groupsClaim,
    keys: new RemoteJwks(
      {
        name: issuer.name,
        url: issuer.url,
        jwksUri: issuer.jwksUri,
        allowInsecureHttp: issuer.allowInsecureHttp,
      },
      { fetcher, clock: deps.clock, timing: deps.timing, logger: deps.logger },
    ),
  }));
}
