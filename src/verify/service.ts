import { FerryError, isFerryError } from "../common/errors.ts";
import { type DigestReference, parseDigestReference } from "../registry/reference.ts";
import { TtlCache } from "./cache.ts";
import { type Discovery, discover } from "./discovery.ts";
import { evaluate, type PlatformDiscovery } from "./evaluate.ts";
import type { CompiledPolicy } from "./policy.ts";
import type { ArtifactFetcher } from "./ports.ts";
import { type Check, type CheckReason, decide, type VerificationReport } from "./report.ts";
import type { TrustContext } from "./trust-context.ts";

/** What {@link VerificationService} is built from. */
export interface VerificationServiceDeps {
  policies: Map<string, CompiledPolicy>;
  trust: TrustContext;
  /** A fetcher for the repository of a reference (caching immutable objects). */
  fetcherFor: (ref: DigestReference) => ArtifactFetcher;
  timeoutMs: number;
  cacheTtlMs: number;
  maxBlobBytes: number;
  now?: () => Date;
}

class Timeout extends Error {}

function operational(
  digest: string,
  environment: string,
  reason: CheckReason,
  message: string,
): VerificationReport {
  return decide(digest, environment, [{ name: "discovery", passed: false, reason, message }]);
}

/**
 * Decides whether a digest may enter an environment: discovery through the fetcher (the only I/O),
 * then the pure evaluation. Decisions are cached by (digest, policy hash, digests of every signature
 * and attestation seen), so a new signature or a changed policy is never answered from the cache.
 */
export class VerificationService {
  readonly #deps: VerificationServiceDeps;
  readonly #decisions: TtlCache<Check[]>;

  constructor(deps: VerificationServiceDeps) {
    this.#deps = deps;
    this.#decisions = new TtlCache({ max: 2048, ttlMs: deps.cacheTtlMs });
  }

  /** The environments this service has a policy for. */
  get environments(): string[] {
    return [...this.#deps.policies.keys()];
  }

  /**
   * Verifies `image` (`host/repo@sha256:…`; a tag is refused with `tag_reference` before any
   * check) for `environment` (`not_found` when unknown). Operational failures deny, with a reason.
   */
  async verify(image: string, environment: string): Promise<VerificationReport> {
    const ref = parseDigestReference(image);
    const policy = this.#deps.policies.get(environment);
    if (!policy) {
      throw new FerryError(
        "not_found",
        `unknown environment "${environment}" (known: ${this.environments.join(", ") || "none"})`,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout()), this.#deps.timeoutMs);
    });
    try {
      return await Promise.race([this.#run(ref, policy), deadline]);
    } catch (err) {
      if (err instanceof Timeout) {
        return operational(
          ref.digest,
          environment,
          "timeout",
          `verification took longer than ${this.#deps.timeoutMs} ms`,
        );
      }
      if (isFerryError(err, "not_found")) {
        return operational(
          ref.digest,
          environment,
          "subject_not_found",
          `${ref.registry}/${ref.repository}@${ref.digest} does not exist`,
        );
      }
      const message = isFerryError(err) ? err.message : "the registry could not be read";
      return operational(ref.digest, environment, "fetch_failed", message);
    } finally {
      clearTimeout(timer);
    }
  }

  async #run(ref: DigestReference, policy: CompiledPolicy): Promise<VerificationReport> {
    const fetcher = this.#deps.fetcherFor(ref);
    const opts = { maxBlobBytes: this.#deps.maxBlobBytes };
    const discovery = await discover(fetcher, ref.digest, opts);
    const platforms = await this.#platforms(fetcher, discovery, policy, opts);
    const key = [
      ref.digest,
      policy.hash,
      ...discovery.candidates.map((c) => c.digest).sort(),
      ...platforms.flatMap((p) => [p.digest, ...p.discovery.candidates.map((c) => c.digest).sort()]),
    ].join("|");
    const cached = this.#decisions.get(key);
    if (cached) return { ...decide(ref.digest, policy.environment, cached), cached: true };
    const checks = evaluate(
      policy,
      this.#deps.trust,
      discovery,
      platforms,
      (this.#deps.now ?? (() => new Date()))(),
    );
    this.#decisions.set(key, checks);
    return decide(ref.digest, policy.environment, checks);
  }

  async #platforms(
    fetcher: ArtifactFetcher,
    discovery: Discovery,
    policy: CompiledPolicy,
    opts: { maxBlobBytes: number },
  ): Promise<PlatformDiscovery[]> {
    const subject = discovery.subject.manifest;
    if (subject.kind !== "index" || policy.signature?.multiArch !== "index-and-platforms") return [];
    return Promise.all(
      subject.value.manifests.map(async (d) => ({
        digest: d.digest,
        platform: d.platform
          ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join("/")
          : "unknown",
        discovery: await discover(fetcher, d.digest, opts),
      })),
    );
  }
}
