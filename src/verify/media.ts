/** Media types, annotations and predicate types verification recognises. */

/** cosign's legacy simple-signing layer (`.sig` tag). */
export const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
/** A DSSE envelope layer (cosign's legacy `.att` tag). */
export const DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json";
/** The in-toto payload type of a DSSE envelope. */
export const IN_TOTO_PAYLOAD = "application/vnd.in-toto+json";

/** Annotations cosign puts on legacy layers. */
export const Annotation = {
  signature: "dev.cosignproject.cosign/signature",
  certificate: "dev.sigstore.cosign/certificate",
  chain: "dev.sigstore.cosign/chain",
  bundle: "dev.sigstore.cosign/bundle",
  rfc3161: "dev.sigstore.cosign/rfc3161timestamp",
  /** Unsigned: a hint only, never trusted over the signed statement. */
  predicateType: "predicateType",
} as const;

/** True for a Sigstore bundle media type, any version (v0.1 to v0.3, old and new spelling). */
export function isBundleMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  return (
    /^application\/vnd\.dev\.sigstore\.bundle\.v0\.[1-9]\+json$/.test(mediaType) ||
    /^application\/vnd\.dev\.sigstore\.bundle\+json;\s*version=0\.[1-9]$/.test(mediaType)
  );
}

/** The predicate type cosign (v3, `--new-bundle-format`) uses for an image signature statement. */
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";

/** SBOM predicate types (cosign's `spdxjson`, `cyclonedx`, and their versioned spellings). */
export function isSbomPredicate(type: string): "spdx" | "cyclonedx" | undefined {
  if (/^https:\/\/spdx\.dev\/Document(\/v\d+(\.\d+)*)?$/.test(type)) return "spdx";
  if (/^https:\/\/spdx\.org\/rdf\/3\.\d+(\.\d+)?\//.test(type)) return "spdx";
  if (/^https:\/\/cyclonedx\.org\/(bom|schema)(\/v\d+(\.\d+)*)?$/.test(type)) return "cyclonedx";
  return undefined;
}

/** SLSA provenance predicate types. */
export function slsaVersion(type: string): "v0.2" | "v1" | undefined {
  if (type === "https://slsa.dev/provenance/v0.2") return "v0.2";
  if (type === "https://slsa.dev/provenance/v1") return "v1";
  return undefined;
}
