import { DEFAULT_RETRY, type RetryPolicy } from "../common/backoff.ts";
import { type Clock, systemClock } from "../common/clock.ts";
import { FerryError } from "../common/errors.ts";
import type { FerryConfig } from "../config/schema.ts";
import { RegistryAllowList, type RegistrySettings } from "./allow-list.ts";
import type { FetchFn, HttpPolicy } from "./http.ts";
import { LazyLayout } from "./lazy-layout.ts";
import type { ArtifactWriter } from "./ports.ts";
import { isLayoutReference, layoutDirectory, type RepositoryReference } from "./reference.ts";
import { type RegistryContext, RegistryRepository } from "./registry-repository.ts";
import { RegistryTransport } from "./transport.ts";

/** Options of a {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** The registries Ferry may contact (config `registries`); any other host is refused. */
  registries: readonly RegistrySettings[];
  /** Stall timeout of every request (default 30 s). */
  timeoutMs?: number;
  /** Retry policy for 408/429/5xx and connection errors (default 3 retries, 200 ms → 5 s, jittered). */
  retry?: Partial<RetryPolicy>;
  /** The cap of `fetchBlob` when the caller gives none: signatures, attestations, SBOMs (default 16 MiB). */
  maxBlobBytes?: number;
  /**
   * The OCI image layouts Ferry may open where a repository could stand (`oci-layout:/abs/dir`, as
   * `apps[].images` lists them once resolved); any other layout is refused, as an unlisted registry is.
   */
  layouts?: readonly string[];
  /** The fetch to use (default: Node's global fetch). */
  fetch?: FetchFn;
  /** Times retry backoff and token expiry (default: the system clock). */
  clock?: Clock;
}

/**
 * The entry point to registries: holds the allow-list, and per registry the authentication state
 * (token cache) and what it learned about the registry (whether it serves the referrers API).
 * One client per process (or per test) is enough; repositories are cheap views on it.
 */
export class RegistryClient {
  readonly #allowList: RegistryAllowList;
  readonly #policy: HttpPolicy;
  readonly #maxBlobBytes: number;
  readonly #contexts = new Map<string, RegistryContext>();
  readonly #layouts: ReadonlySet<string>;

  constructor(options: RegistryClientOptions) {
    this.#allowList = new RegistryAllowList(options.registries);
    this.#policy = {
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.timeoutMs ?? 30_000,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      clock: options.clock ?? systemClock,
    };
    this.#maxBlobBytes = options.maxBlobBytes ?? 16 * 1024 * 1024;
    this.#layouts = new Set(options.layouts ?? []);
  }

  /**
   * A repository of an allow-listed registry, or an allow-listed OCI image layout for an
   * `oci-layout:` reference (see `LAYOUT_REGISTRY`): what verification, signing, promotion and
   * evidence read and write. `forbidden` when the registry or layout is not listed.
   */
  repositoryOf(ref: RepositoryReference): ArtifactWriter {
    if (!isLayoutReference(ref)) return this.repository(ref);
    const location = `${ref.registry}/${ref.repository}`;
    if (!this.#layouts.has(location)) {
      throw new FerryError(
        "forbidden",
        `${location} is not an OCI layout of apps[].images: Ferry opens no other`,
      );
    }
    return new LazyLayout(layoutDirectory(ref), this.#maxBlobBytes);
  }

  /** A repository of an allow-listed registry; `forbidden` when the registry is not listed. */
  repository(ref: RepositoryReference): RegistryRepository {
    const endpoint = this.#allowList.endpoint(ref.registry);
    let ctx = this.#contexts.get(endpoint.origin);
    if (ctx === undefined) {
      ctx = {
        transport: new RegistryTransport(endpoint, this.#policy),
        referrersApi: undefined,
        maxBlobBytes: this.#maxBlobBytes,
      };
      this.#contexts.set(endpoint.origin, ctx);
    }
    return new RegistryRepository(ctx, ref.registry, ref.repository);
  }
}

/**
 * A {@link RegistryClient} from the parsed config (`registries` and `registryClient`; the
 * `oci-layout:` values of `apps[].images` are its layouts).
 */
export function createRegistryClient(
  config: Pick<FerryConfig, "registries" | "registryClient"> & { apps?: FerryConfig["apps"] },
  options: Pick<RegistryClientOptions, "fetch" | "clock"> = {},
): RegistryClient {
  const layouts = (config.apps ?? [])
    .flatMap((a) => Object.values(a.images))
    .filter((i) => i.startsWith("oci-layout:"));
  return new RegistryClient({
    registries: config.registries,
    layouts,
    timeoutMs: config.registryClient.timeout,
    retry: { retries: config.registryClient.retries },
    maxBlobBytes: config.registryClient.attestationMaxBytes,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}
