import type { KeyObject } from "node:crypto";
import type { FerryConfig } from "../config/schema.ts";
import type { ArtifactReader } from "../registry/ports.ts";
import type { RepositoryReference } from "../registry/reference.ts";
import { compileAuthorities } from "./authorities.ts";
import { CachingFetcher, createImmutableCache } from "./caching-fetcher.ts";
import { compilePolicy } from "./policy.ts";
import { RegistryFetcher } from "./registry-fetcher.ts";
import { VerificationService } from "./service.ts";
import { buildTrustContext } from "./trust-context.ts";
import { loadTrustRoots } from "./trust-root.ts";

/** What {@link createVerificationService} needs besides the config. */
export interface VerificationWiring {
  /** The public half of `keys.signing`, for `key: ferry` authorities. */
  ferryKey?: KeyObject;
  /** A reader for a repository: in production, `RegistryClient.repository`. */
  readerFor: (ref: RepositoryReference) => ArtifactReader;
}

/**
 * Wires the verification graph from the parsed config: trust roots loaded and authorities and
 * policies compiled once (a bad key file throws here, at start-up), one shared cache of immutable
 * registry objects, and a fetcher per repository over the registry client.
 */
export function createVerificationService(
  config: Pick<FerryConfig, "trust" | "environments" | "registryClient">,
  wiring: VerificationWiring,
): VerificationService {
  const files =
    config.trust.trustedRoot === undefined
      ? []
      : Array.isArray(config.trust.trustedRoot)
        ? config.trust.trustedRoot
        : [config.trust.trustedRoot];
  const roots = loadTrustRoots(files, config.trust.publicGood);
  const authorities = compileAuthorities(config.trust.authorities, wiring.ferryKey);
  const trust = buildTrustContext(authorities, roots);
  const rootNames = roots.roots.map((r) => r.name);
  const policies = new Map(
    config.environments.map((env) => [
      env.name,
      compilePolicy(env.name, env.require, authorities, rootNames),
    ]),
  );
  const cache = createImmutableCache();
  return new VerificationService({
    policies,
    trust,
    fetcherFor: (ref) => new CachingFetcher(new RegistryFetcher(wiring.readerFor(ref)), cache),
    timeoutMs: config.trust.timeout,
    cacheTtlMs: config.trust.cacheTtl,
    maxBlobBytes: config.registryClient.attestationMaxBytes,
  });
}
