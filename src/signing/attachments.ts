import { createHash } from "node:crypto";
import { sha256 } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import {
  COSIGN,
  cosignConfig,
  type DsseEnvelope,
  inTotoStatement,
  pae,
  simpleSigningPayload,
} from "./formats.ts";
import type { Signer } from "./signer.ts";

/** A blob with its descriptor, ready to push. */
export interface Blob {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/** A manifest ready to push, with the blobs it references. */
export interface ManifestToPush {
  mediaType: string;
  bytes: Uint8Array;
  digest: string;
  blobs: Blob[];
}

const encoder = new TextEncoder();
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

function blob(mediaType: string, bytes: Uint8Array, annotations?: Record<string, string>): Blob {
  return {
    descriptor: {
      mediaType,
      digest: sha256(bytes),
      size: bytes.byteLength,
      ...(annotations ? { annotations } : {}),
    },
    bytes,
  };
}

/** The key hint cosign writes in bundles: base64 of the SHA-256 of the DER public key. */
export function publicKeyHint(signer: Signer): string {
  const der = Buffer.from(
    signer.publicKeyPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""),
    "base64",
  );
  return createHash("sha256").update(der).digest("base64");
}

/** A cosign `.sig` layer: the simple-signing payload, its signature in the layer's annotation. */
export async function signatureLayer(
  signer: Signer,
  repository: string,
  digest: string,
  annotations?: Record<string, string>,
): Promise<Blob> {
  const payload = simpleSigningPayload(repository, digest, annotations);
  const signature = await signer.sign(payload);
  return blob(COSIGN.simpleSigning, payload, { [COSIGN.signatureAnnotation]: b64(signature) });
}

/** Signs an in-toto statement about `repository@digest` into a DSSE envelope. */
export async function signStatement(
  signer: Signer,
  repository: string,
  digest: string,
  predicateType: string,
  predicate: unknown,
): Promise<{ envelope: DsseEnvelope; payload: Uint8Array }> {
  const payload = encoder.encode(
    JSON.stringify(inTotoStatement(repository, digest, predicateType, predicate)),
  );
  const signature = await signer.sign(pae(COSIGN.inTotoPayloadType, payload));
  return {
    payload,
    envelope: {
      payloadType: COSIGN.inTotoPayloadType,
      payload: b64(payload),
      signatures: [{ keyid: "", sig: b64(signature) }],
    },
  };
}

/** A cosign `.att` layer: the DSSE envelope, with cosign's (unsigned, informative) annotations. */
export function attestationLayer(envelope: DsseEnvelope, predicateType: string): Blob {
  return blob(COSIGN.dsseEnvelope, encoder.encode(JSON.stringify(envelope)), {
    [COSIGN.signatureAnnotation]: "",
    [COSIGN.predicateTypeAnnotation]: predicateType,
  });
}

/** A fresh cosign signature/attestation "image": a config listing the layers, and the manifest. */
export function attachmentImage(layers: Blob[]): ManifestToPush {
  const config = blob(
    "application/vnd.oci.image.config.v1+json",
    cosignConfig(layers.map((l) => l.descriptor.digest)),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: config.descriptor,
    layers: layers.map((l) => l.descriptor),
  };
  const bytes = encoder.encode(JSON.stringify(manifest));
  return { mediaType: MediaType.ociManifest, bytes, digest: sha256(bytes), blobs: [config, ...layers] };
}

const EMPTY_JSON = encoder.encode("{}");

/**
 * A Sigstore bundle v0.3 (key-signed: a public-key hint, no log entry) holding `envelope`, as an
 * OCI referrer of `subject` in the layout `cosign attest --new-bundle-format` writes.
 */
export function bundleReferrer(
  signer: Signer,
  subject: Descriptor,
  envelope: DsseEnvelope,
  predicateType: string,
  created: Date,
): ManifestToPush {
  const bundle = {
    mediaType: COSIGN.bundleV03,
    verificationMaterial: { publicKey: { hint: publicKeyHint(signer) } },
    dsseEnvelope: envelope,
  };
  const layer = blob(COSIGN.bundleV03, encoder.encode(JSON.stringify(bundle)));
  const config = blob(MediaType.ociEmpty, EMPTY_JSON);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: COSIGN.bundleV03,
    config: config.descriptor,
    layers: [layer.descriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: {
      "dev.sigstore.bundle.content": "dsse-envelope",
      "dev.sigstore.bundle.predicateType": predicateType,
      "org.opencontainers.image.created": created.toISOString().replace(/\.\d{3}Z$/, "Z"),
    },
  };
  const bytes = encoder.encode(JSON.stringify(manifest));
  return { mediaType: MediaType.ociManifest, bytes, digest: sha256(bytes), blobs: [config, layer] };
}
