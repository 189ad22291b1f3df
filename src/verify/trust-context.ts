import { TrustedRoot } from "@sigstore/protobuf-specs";
import { type KeyFinderFunc, type TrustMaterial, toTrustMaterial, Verifier } from "@sigstore/verify";
import type { Authority, KeyAuthority } from "./authorities.ts";
import type { TrustedLog } from "./intoto-v001.ts";
import type { TrustRoots } from "./trust-root.ts";

/** Verifiers built once from the trust roots and authorities; verification itself is pure CPU. */
export interface TrustContext {
  authorities: Map<string, Authority>;
  /**
   * One verifier per trusted root, for certificate (keyless) signatures, with that root's logs for
   * the log entries Ferry verifies itself (Rekor `intoto` v0.0.1, see `intoto-v001.ts`).
   */
  keyless: { root: string; verifier: Verifier; tlogs: TrustedLog[] }[];
  /** One verifier per key authority, by authority name. */
  keys: Map<string, Verifier>;
  /** Why keyless verification cannot run, when a configured root failed to load. */
  rootProblem?: string;
}

function mergedRoots(roots: TrustRoots): TrustedRoot {
  const empty = TrustedRoot.fromJSON({
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
  for (const { root } of roots.roots) {
    empty.tlogs.push(...root.tlogs);
    empty.ctlogs.push(...root.ctlogs);
    empty.certificateAuthorities.push(...root.certificateAuthorities);
    empty.timestampAuthorities.push(...root.timestampAuthorities);
  }
  return empty;
}

function keyMaterial(base: TrustedRoot, authority: KeyAuthority): TrustMaterial {
  // The authority's key answers every hint: the hint in a bundle is a claim, the signature the proof.
  const finder: KeyFinderFunc = () => ({ publicKey: authority.key, validFor: () => true });
  return toTrustMaterial(base, finder);
}

/**
 * Builds the verifiers. Key authorities need no log (`--tlog-upload=false` signatures have none),
 * but a log entry that is present must verify against a trusted log. Certificates need a verified
 * timestamp (a log's signed entry timestamp or a TSA's): without one, nothing proves the signature
 * was made while the short-lived certificate was valid. SCTs are required where the root lists CT logs.
 */
export function buildTrustContext(authorities: Map<string, Authority>, roots: TrustRoots): TrustContext {
  const base = mergedRoots(roots);
  const keys = new Map<string, Verifier>();
  for (const authority of authorities.values()) {
    if (authority.kind === "key") {
      keys.set(
        authority.name,
        new Verifier(keyMaterial(base, authority), {
          tlogThreshold: 0,
          ctlogThreshold: 0,
          timestampThreshold: 0,
        }),
      );
    }
  }
  const keyless = roots.roots.map(({ name, root }) => {
    const material = toTrustMaterial(root);
    return {
      root: name,
      verifier: new Verifier(material, {
        tlogThreshold: 0,
        ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0,
        timestampThreshold: 1,
      }),
      tlogs: material.tlogs,
    };
  });
  return { authorities, keyless, keys, ...(roots.problem ? { rootProblem: roots.problem } : {}) };
}
