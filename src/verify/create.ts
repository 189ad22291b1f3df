import type { KeyObject } from "node:crypto";
import type { Clock } from "../common/clock.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { ArtifactReader } from "../registry/ports.ts";
import type { RepositoryReference } from "../registry/reference.ts";
import { compileAuthorities } from "./authorities.ts";
import { appIndex } from "./binding.ts";
import { CachingFetcher, createImmutableCache } from "./caching-fetcher.ts";
import { compileRequirements } from "./policy.ts";
import { RegistryFetcher } from "./registry-fetcher.ts";
import { VerificationService } from "./service.ts";
import { buildTrustContext } from "./trust-context.ts";
import { configuredRootNames, loadTrustRoots } from "./trust-root.ts";

/** What {@link createVerificationService} needs besides the config. */
export interface VerificationWiring {
  /** The public half of `keys.signing`, for `key: ferry` authorities. */
  ferryKey?: KeyObject;
  /** A reader for a repository: in production, `RegistryClient.repository`. */
  readerFor: (ref: RepositoryReference) => ArtifactReader;
  /** Times deadlines and caches, and is "now" for checks of age (default: the system clock). */
  clock?: Clock;
}

/**
 * Wires the verification graph from the parsed config: trust roots loaded and authorities and
 * policies compiled once (a bad key file throws here, at start-up), one shared cache of immutable
 * registry objects bounded by `trust.limits.cacheBytes`, and a fetcher per repository over the
 * registry client. `apps` tells which app a repository belongs to (for Ferry's own signatures).
 */
export function createVerificationService(
  config: Pick<FerryConfig, "trust" | "environments" | "registryClient"> & Partial<Pick<FerryConfig, "apps">>,
  wiring: VerificationWiring,
): VerificationService {
  const { files, names } = configuredRootNames(config.trust);
  const roots = loadTrustRoots(files, config.trust.publicGood);
  const authorities = compileAuthorities(config.trust.authorities, wiring.ferryKey, names);
  const trust = buildTrustContext(authorities, roots);
  const rootNames = roots.roots.map((r) => r.name);
  const policies = new Map(
    config.environments.map((env) => [
      env.name,
      compileRequirements(env.name, env.require, authorities, rootNames),
    ]),
  );
  const { cacheBytes, ...limits } = config.trust.limits;
  const clock = wiring.clock ? { clock: wiring.clock } : {};
  const cache = createImmutableCache({ maxBytes: cacheBytes, ...clock });
  return new VerificationService({
    policies,
    trust,
    fetcherFor: (ref, seed) => new CachingFetcher(new RegistryFetcher(wiring.readerFor(ref)), cache, seed),
    timeoutMs: config.trust.timeout,
    cacheTtlMs: config.trust.cacheTtl,
    maxBlobBytes: config.registryClient.attestationMaxBytes,
    limits,
    appOf: appIndex(config.apps ?? []),
    ...clock,
  });
}
