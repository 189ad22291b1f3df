import { type CopyEvent, copyArtifact } from "../registry/copy.ts";
import type { ArtifactReader, ArtifactWriter } from "../registry/ports.ts";
import { parseRepositoryReference, type RepositoryReference } from "../registry/reference.ts";
import type { VerificationReport } from "../verify/report.ts";
import type { VerificationService } from "../verify/service.ts";

/**
 * What a copy established that its target holds, by digest: the manifests it pushed or found there,
 * and the blobs it uploaded, mounted or found there. Lets the verification after the copy take these
 * objects from the source's verified reads instead of reading them again.
 */
export interface CopiedObjects {
  manifests: ReadonlySet<string>;
  blobs: ReadonlySet<string>;
}

/** What promotion needs of registries: does a digest exist, and copy it (with its attachments). */
export interface PromotionRegistry {
  /** Whether `repository` (`host/path`) holds a manifest with `digest`. */
  exists(repository: string, digest: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Copies `digest` with its signatures and attestations from `source` to `target`. Must be
   * idempotent by digest: running it again after a crash only fills in what is missing. Returns what
   * the target is now known to hold, when the copy can tell.
   */
  copy(
    source: string,
    target: string,
    digest: string,
    signal: AbortSignal,
  ): Promise<CopiedObjects | undefined>;
}

/** What promotion needs of verification. */
export interface PromotionVerifier {
  /**
   * Verifies `image` (`host/path@digest`) against `environment`'s `require`. After a copy from
   * `copied.source`, what the copy established is not read again (tags and referrers still are).
   */
  verify(
    image: string,
    environment: string,
    signal: AbortSignal,
    copied?: CopiedObjects & { source: string },
  ): Promise<VerificationReport>;
  /** The hash of the environment's compiled policy, stored with the reports. */
  policyHash(environment: string): string;
}

/** A registry-backed {@link PromotionRegistry} over `RegistryClient.repository`. */
export function registryPort(
  repositoryOf: (ref: RepositoryReference) => ArtifactReader & ArtifactWriter,
  /** Transfers one copy runs at once (`registryClient.parallelism`). */
  parallelism?: number,
): PromotionRegistry {
  const open = (repository: string) => repositoryOf(parseRepositoryReference(repository));
  return {
    async exists(repository, digest, signal) {
      signal.throwIfAborted();
      return (await open(repository).findManifest(digest, { signal })) !== undefined;
    },
    async copy(source, target, digest, signal) {
      signal.throwIfAborted();
      // Registry writes cannot be fenced: a stale worker can at worst write the same
      // content-addressed objects again (harmless). On abort (a lost lease) the copy itself stops:
      // its reads in flight are aborted and no further request is made.
      const manifests = new Set<string>();
      const blobs = new Set<string>();
      const onProgress = (event: CopyEvent) => {
        if (event.type === "manifest") manifests.add(event.digest);
        else if (event.type === "blob") blobs.add(event.digest);
        // A referrer's event means its manifest is in the target (pushed, or found by digest); a
        // legacy tag's does not (the target may keep a merged manifest under another digest).
        else if (event.type === "attachment" && event.kind === "referrer") manifests.add(event.digest);
      };
      await copyArtifact(open(source), digest, open(target), {
        onProgress,
        signal,
        ...(parallelism === undefined ? {} : { parallelism }),
      });
      return { manifests, blobs };
    },
  };
}

/** A {@link PromotionVerifier} over the verification service. */
export function verifierPort(service: VerificationService): PromotionVerifier {
  return {
    async verify(image, environment, signal, copied) {
      return service.verify(image, environment, copied ? { copiedFrom: copied, signal } : { signal });
    },
    policyHash: (environment) => service.policyHash(environment) ?? "",
  };
}
