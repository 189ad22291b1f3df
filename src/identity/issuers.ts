import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import type { FerryConfig } from "../config/schema.ts";
import { detectPlatform } from "./claims.ts";
import { httpJsonFetcher, type JsonFetcher } from "./http-fetch.ts";
import { type JwksTiming, type KeySource, RemoteJwks } from "./jwks.ts";
import type { TrustedIssuer } from "./verifier.ts";

/** What building the registered issuers needs: the HTTP port and, for tests, a clock and cache timing. */
export interface IssuerDeps {
  fetcher?: JsonFetcher;
  clock?: Clock;
  timing?: Partial<JwksTiming>;
  /** Where a failed JWKS or discovery fetch is reported (at warn, with its cause). */
  logger?: Logger;
  /** The keys of dev issuers (`issuers[].devKey`), by issuer name; each dev issuer must have one. */
  devKeys?: ReadonlyMap<string, KeySource>;
}

/** The issuers of `ferry.yaml`, each with its own JWKS cache. */
export function registeredIssuers(issuers: FerryConfig["issuers"], deps: IssuerDeps = {}): TrustedIssuer[] {
  const fetcher = deps.fetcher ?? httpJsonFetcher;
  return issuers.map((issuer) => ({
    name: issuer.name,
    url: issuer.url,
    audience: issuer.audience,
    // A dev issuer's key is Ferry's kind of key: ECDSA P-256.
    algorithms: issuer.devKey === undefined ? issuer.algorithms : ["ES256"],
    leewayMs: issuer.leeway,
    maxTokenAgeMs: issuer.maxTokenAge,
    requireJti: issuer.requireJti,
    kind: issuer.kind,
    platform: issuer.platform ?? detectPlatform(issuer.url),
    groupsClaim: issuer.groupsClaim,
    keys:
      issuer.devKey === undefined
        ? remoteKeys(issuer, fetcher, deps)
        : (deps.devKeys?.get(issuer.name) ?? noDevKey(issuer.name)),
  }));
}

/** Fails closed: a dev issuer whose key was not loaded must never fall back to fetching a JWKS. */
function noDevKey(name: string): never {
  throw new Error(`issuer ${name} is a dev issuer but its key was not loaded`);
}

function remoteKeys(
  issuer: FerryConfig["issuers"][number],
  fetcher: JsonFetcher,
  deps: IssuerDeps,
): KeySource {
  return new RemoteJwks(
    {
      name: issuer.name,
      url: issuer.url,
      jwksUri: issuer.jwksUri,
      allowInsecureHttp: issuer.allowInsecureHttp,
    },
    { fetcher, clock: deps.clock, timing: deps.timing, logger: deps.logger },
  );
}
