import type { FerryConfig } from "../config/schema.ts";
import { detectPlatform } from "./claims.ts";
import { httpJsonFetcher, type JsonFetcher } from "./http-fetch.ts";
import { type JwksTiming, RemoteJwks } from "./jwks.ts";
import type { TrustedIssuer } from "./verifier.ts";

/** What building the registered issuers needs: the HTTP port and, for tests, a clock and cache timing. */
export interface IssuerDeps {
  fetcher?: JsonFetcher;
  now?: () => number;
  timing?: Partial<JwksTiming>;
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
      { url: issuer.url, jwksUri: issuer.jwksUri, allowInsecureHttp: issuer.allowInsecureHttp },
      { fetcher, now: deps.now, timing: deps.timing },
    ),
  }));
}
