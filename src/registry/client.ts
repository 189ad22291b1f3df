import { DEFAULT_RETRY, type RetryPolicy } from "../common/backoff.ts";
import { type Clock, systemClock } from "../common/clock.ts";
import type { FerryConfig } from "../config/schema.ts";
import { RegistryAllowList, type RegistrySettings } from "./allow-list.ts";
import type { FetchFn, HttpPolicy } from "./http.ts";
import type { RepositoryReference } from "./reference.ts";
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

  constructor(options: RegistryClientOptions) {
    this.#allowList = new RegistryAllowList(options.registries);
    this.#policy = {
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.timeoutMs ?? 30_000,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      clock: options.clock ?? systemClock,
    };
    this.#maxBlobBytes = options.maxBlobBytes ?? 16 * 1024 * 1024;
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

/** A {@link RegistryClient} from the parsed config (`registries` and `registryClient`). */
export function createRegistryClient(
  config: Pick<FerryConfig, "registries" | "registryClient">,
  options: Pick<RegistryClientOptions, "fetch" | "clock"> = {},
): RegistryClient {
  return new RegistryClient({
    registries: config.registries,
    timeoutMs: config.registryClient.timeout,
    retry: { retries: config.registryClient.retries },
    maxBlobBytes: config.registryClient.attestationMaxBytes,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}
