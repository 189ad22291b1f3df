/**
 * The byte formats Ferry signs, exactly as cosign and Sigstore clients read them. Pure functions:
 * no I/O, no keys.
 */

/** Media types and annotations of cosign's storage formats and of Sigstore bundles. */
export const COSIGN = {
  simpleSigning: "application/vnd.dev.cosign.simplesigning.v1+json",
  dsseEnvelope: "application/vnd.dsse.envelope.v1+json",
  signatureAnnotation: "dev.cosignproject.cosign/signature",
  predicateTypeAnnotation: "predicateType",
  inTotoPayloadType: "application/vnd.in-toto+json",
  bundleV03: "application/vnd.dev.sigstore.bundle.v0.3+json",
} as const;

const encoder = new TextEncoder();

/**
 * The cosign "simple signing" payload for an image digest. cosign verifies the signature over
 * these exact bytes and checks `docker-manifest-digest`; `optional` carries annotations (cosign's
 * `-a key=value`), here the requesting pipeline's identity.
 */
export function simpleSigningPayload(
  repository: string,
  digest: string,
  optional?: Record<string, string>,
): Uint8Array {
  const body = {
    critical: {
      identity: { "docker-reference": repository },
      image: { "docker-manifest-digest": digest },
      type: "cosign container image signature",
    },
    optional: optional && Object.keys(optional).length > 0 ? optional : null,
  };
  return encoder.encode(JSON.stringify(body));
}

/** An in-toto Statement v1 about one image digest. */
export interface InTotoStatement {
  _type: "https://in-toto.io/Statement/v1";
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: unknown;
}

/** Builds the in-toto Statement v1 whose only subject is `repository@digest`. */
export function inTotoStatement(
  repository: string,
  digest: string,
  predicateType: string,
  predicate: unknown,
): InTotoStatement {
  const hex = digest.replace(/^sha256:/, "");
  return {
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ name: repository, digest: { sha256: hex } }],
    predicateType,
    predicate,
  };
}

/** DSSE pre-authentication encoding: what a DSSE signature actually signs. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = encoder.encode(payloadType);
  const header = encoder.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(header.length + payload.length);
  out.set(header, 0);
  out.set(payload, header.length);
  return out;
}

/** A DSSE envelope as cosign stores it in `.att` layers (`keyid` empty, as cosign writes it). */
export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

/** The config blob cosign writes for a signature "image": its diff_ids list the layers. */
export function cosignConfig(layerDigests: string[]): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      architecture: "",
      created: "0001-01-01T00:00:00Z",
      history: [{ created: "0001-01-01T00:00:00Z" }],
      os: "",
      rootfs: { type: "layers", diff_ids: layerDigests },
      config: {},
    }),
  );
}

/** The cosign tag that holds signatures (`.sig`) or attestations (`.att`) of a digest. */
export function cosignTag(digest: string, kind: "sig" | "att" | "sbom"): string {
  return `${digest.replace(":", "-")}.${kind}`;
}
