import { type Clock, systemClock } from "../common/clock.ts";
import { FerryError, isFerryError } from "../common/errors.ts";
import { TtlCache } from "../common/ttl-cache.ts";
import {
  type DigestReference,
  parseDigestReference,
  parseRepositoryReference,
} from "../registry/reference.ts";
import type { AppOf } from "./binding.ts";
import type { CopySeed } from "./caching-fetcher.ts";
import { type DiscoverOptions, type Discovery, discover } from "./discovery.ts";
import { evaluate, type PlatformDiscovery } from "./evaluate.ts";
import { LimitExceeded, ReadBudget, type VerificationLimits } from "./limits.ts";
import type { CompiledRequirements } from "./policy.ts";
import type { ArtifactFetcher } from "./ports.ts";
import { type Check, type CheckReason, decide, type VerificationReport } from "./report.ts";
import type { TrustContext } from "./trust-context.ts";

/** What {@link VerificationService} is built from. */
export interface VerificationServiceDeps {
  policies: Map<string, CompiledRequirements>;
  trust: TrustContext;
  /** A fetcher for the repository of a reference (caching immutable objects; seeded by a copy's objects). */
  fetcherFor: (ref: DigestReference, seed?: CopySeed) => ArtifactFetcher;
  timeoutMs: number;
  cacheTtlMs: number;
  maxBlobBytes: number;
  /** `trust.limits`: what one verification may read. */
  limits: VerificationLimits;
  /** The app owning a repository (`apps[].images`), to bind Ferry's own signatures to their app. */
  appOf: AppOf;
  /** Times the deadline and the decision cache, and is "now" for checks of age (default: the system clock). */
  clock?: Clock;
}

/** Options of {@link VerificationService.verify}. */
export interface VerifyOptions {
  /**
   * What a copy from `source` (`host/path`) has just established the image's repository holds, by
   * digest: those manifests and blobs are taken from the source's verified reads instead of being
   * read again. Tags and referrers are still asked of the image's repository (see `CopySeed`).
   */
  copiedFrom?: { source: string; manifests: ReadonlySet<string>; blobs: ReadonlySet<string> };
  /**
   * The caller's cancellation (a promotion step that lost its lease): when it aborts, every read in
   * flight is aborted, as at the deadline, and `verify` rejects with its reason (no report).
   */
  signal?: AbortSignal;
}

// What the cached decisions may hold in all (about 1,000 decisions of a few signatures each).
const DECISION_CACHE_BYTES = 4 * 1024 * 1024;

class Timeout extends Error {}
// Aborts what a finished verification left in flight (siblings of a read that failed or hit a cap).
class Settled extends Error {}

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
 * then the pure evaluation. Decisions are cached by (repository, digest, policy hash, and the
 * manifest and layer digests of every signature and attestation seen), so a new or re-annotated
 * signature, a changed policy, or another repository is never answered from the cache.
 */
export class VerificationService {
  readonly #deps: VerificationServiceDeps;
  readonly #decisions: TtlCache<Check[]>;
  readonly #clock: Clock;

  constructor(deps: VerificationServiceDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    // Bounded in bytes too: a decision's checks carry every candidate's details, so entries differ
    // in size by orders of magnitude (the JSON length stands in for what the objects hold).
    this.#decisions = new TtlCache({
      max: 2048,
      ttlMs: deps.cacheTtlMs,
      clock: this.#clock,
      size: (checks) => JSON.stringify(checks).length,
      maxSize: DECISION_CACHE_BYTES,
    });
  }

  /** The hash of an environment's compiled policy (stored with promotions' reports); undefined when unknown. */
  policyHash(environment: string): string | undefined {
    return this.#deps.policies.get(environment)?.hash;
  }

  /** The environments this service has a policy for. */
  get environments(): string[] {
    return [...this.#deps.policies.keys()];
  }

  /**
   * Verifies `image` (`host/repo@sha256:…`; a tag is refused with `tag_reference` before any
   * check) for `environment` (`not_found` when unknown). Operational failures deny, with a reason.
   */
  async verify(image: string, environment: string, options: VerifyOptions = {}): Promise<VerificationReport> {
    const ref = parseDigestReference(image);
    const policy = this.#deps.policies.get(environment);
    if (!policy) {
      throw new FerryError(
        "not_found",
        `unknown environment "${environment}" (known: ${this.environments.join(", ") || "none"})`,
      );
    }
    // The deadline both answers (the race) and cancels: its signal aborts every read in flight, so
    // abandoned work stops and its buffers are freed instead of finishing in the background.
    const controller = new AbortController();
    // Ends the deadline's sleep once the verification is over, whichever way.
    const over = new AbortController();
    const deadline = this.#clock.sleep(this.#deps.timeoutMs, over.signal).then(() => {
      const timeout = new Timeout();
      controller.abort(timeout);
      throw timeout;
    });
    // Its rejection once `over` aborts is expected: nothing else awaits it after the race.
    deadline.catch(() => {});
    try {
      const external = options.signal;
      if (external === undefined)
        return await Promise.race([this.#run(ref, policy, controller.signal, options), deadline]);
      external.throwIfAborted();
      const abandoned = new Promise<never>((_, reject) =>
        external.addEventListener("abort", () => reject(external.reason), {
          once: true,
          signal: over.signal,
        }),
      );
      const signal = AbortSignal.any([controller.signal, external]);
      return await Promise.race([this.#run(ref, policy, signal, options), deadline, abandoned]);
    } catch (err) {
      // The caller stopped waiting: its reason, not a report of reads it cut short.
      if (options.signal?.aborted) throw options.signal.reason;
      if (err instanceof Timeout) {
        return operational(
          ref.digest,
          environment,
          "timeout",
          `verification took longer than ${this.#deps.timeoutMs} ms`,
        );
      }
      if (err instanceof LimitExceeded) {
        return operational(ref.digest, environment, err.reason, err.message);
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
      over.abort();
      if (!controller.signal.aborted) controller.abort(new Settled());
    }
  }

  async #run(
    ref: DigestReference,
    policy: CompiledRequirements,
    signal: AbortSignal,
    options: VerifyOptions,
  ): Promise<VerificationReport> {
    const fetcher = this.#deps.fetcherFor(ref, seedOf(options));
    const opts: DiscoverOptions = {
      maxBlobBytes: this.#deps.maxBlobBytes,
      budget: new ReadBudget(this.#deps.limits),
      signal,
    };
    const discovery = await discover(fetcher, ref.digest, opts);
    const platforms = await this.#platforms(fetcher, discovery, policy, opts);
    // Past the deadline nothing is decided, nor cached: what was read may be incomplete.
    signal.throwIfAborted();
    const repository = `${ref.registry}/${ref.repository}`;
    // Manifest digests cover the annotations (signature, certificate, log bundle) of their layers.
    const seen = (d: Discovery) => d.candidates.map((c) => `${c.manifestDigest}/${c.digest}`).sort();
    const key = [
      repository,
      ref.digest,
      policy.hash,
      ...seen(discovery),
      ...platforms.flatMap((p) => [p.digest, ...seen(p.discovery)]),
    ].join("|");
    const cached = this.#decisions.get(key);
    if (cached) return { ...decide(ref.digest, policy.environment, cached), cached: true };
    const checks = evaluate(policy, this.#deps.trust, discovery, platforms, new Date(this.#clock.now()), {
      repository,
      appOf: this.#deps.appOf,
    });
    this.#decisions.set(key, checks);
    return decide(ref.digest, policy.environment, checks);
  }

  async #platforms(
    fetcher: ArtifactFetcher,
    discovery: Discovery,
    policy: CompiledRequirements,
    opts: DiscoverOptions,
  ): Promise<PlatformDiscovery[]> {
    const subject = discovery.subject.manifest;
    if (subject.kind !== "index" || policy.signature?.multiArch !== "index-and-platforms") return [];
    opts.budget.count(
      subject.value.manifests.length,
      opts.budget.limits.platforms,
      "too_many_platforms",
      `platform manifests of ${discovery.subject.digest}`,
    );
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

/** The fetcher's seed for a verification after a copy: the source as a fetcher location. */
function seedOf(options: VerifyOptions): CopySeed | undefined {
  const copied = options.copiedFrom;
  if (copied === undefined) return undefined;
  const source = parseRepositoryReference(copied.source);
  return {
    from: `${source.registry}/${source.repository}`,
    manifests: copied.manifests,
    blobs: copied.blobs,
  };
}
