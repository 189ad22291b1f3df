import type { CheckReason } from "./report.ts";

/**
 * How much one verification may read (`trust.limits`). Every cap is decided from what a manifest
 * declares (its layer list and descriptor sizes, an index's manifest list) before the objects it
 * names are fetched: registry content is attacker-writable, and the caps are what keeps one request
 * from filling the heap.
 */
export interface VerificationLimits {
  /** Signature and attestation manifests (a `.sig` or `.att` tag, each referrer) per digest. */
  candidates: number;
  /** Signature, attestation or bundle layers read from one such manifest. */
  layers: number;
  /** Platform manifests of an image index followed by `multiArch: index-and-platforms`. */
  platforms: number;
  /** Bytes of signature, attestation and bundle blobs (their declared sizes) one verification reads. */
  evidenceBytes: number;
}

/** The defaults of `trust.limits` (the config schema documents why each is what it is). */
export const DEFAULT_LIMITS: VerificationLimits = {
  candidates: 32,
  layers: 16,
  platforms: 64,
  evidenceBytes: 64 * 1024 * 1024,
};

/** A cap was exceeded: the verification is denied with `reason`, nothing more is read. */
export class LimitExceeded extends Error {
  readonly reason: Extract<
    CheckReason,
    "too_many_candidates" | "too_many_layers" | "too_many_platforms" | "evidence_too_large"
  >;

  constructor(reason: LimitExceeded["reason"], message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * One verification's share of the limits: counts every blob byte it is about to read, across the
 * subject and its platform manifests, and refuses the read that would pass `evidenceBytes`.
 */
export class ReadBudget {
  readonly limits: VerificationLimits;
  #bytes = 0;

  constructor(limits: VerificationLimits) {
    this.limits = limits;
  }

  /** Refuses `count` items of `what` when it is over `cap`. */
  count(
    count: number,
    cap: number,
    reason: "too_many_candidates" | "too_many_layers" | "too_many_platforms",
    what: string,
  ): void {
    if (count > cap) throw new LimitExceeded(reason, `${what}: ${count}, more than the ${cap} allowed`);
  }

  /** Reserves `bytes` (declared sizes) before they are fetched. */
  reserve(bytes: number, what: string): void {
    this.#bytes += bytes;
    if (this.#bytes > this.limits.evidenceBytes) {
      throw new LimitExceeded(
        "evidence_too_large",
        `${what}: signatures and attestations of more than ${this.limits.evidenceBytes} bytes in all`,
      );
    }
  }
}
