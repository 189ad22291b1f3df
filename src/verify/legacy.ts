import { type Bundle, bundleFromJSON } from "@sigstore/bundle";
import { z } from "zod";
import type { Descriptor } from "../registry/manifest.ts";
import { Annotation } from "./media.ts";

const BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1";

/** The `dev.sigstore.cosign/bundle` annotation: Rekor's answer for the entry cosign uploaded. */
const rekorBundleSchema = z.object({
  SignedEntryTimestamp: z.string().min(1),
  Payload: z.object({
    body: z.string().min(1),
    integratedTime: z.number().int(),
    logIndex: z.number().int().nonnegative(),
    logID: z.string().regex(/^[0-9a-f]+$/),
  }),
});

/** The `dev.sigstore.cosign/bundle` annotation, parsed. */
export type RekorBundleAnnotation = z.infer<typeof rekorBundleSchema>;

const bodyKindSchema = z.object({ kind: z.string(), apiVersion: z.string() });

/**
 * The cosign bundle annotation of a legacy layer, with the kind and version its logged body names;
 * undefined when the layer has none. Throws when it is present but malformed (the layer is then
 * unreadable, never silently unlogged).
 */
export function rekorAnnotation(
  annotations: Record<string, string>,
): { bundle: RekorBundleAnnotation; kind: string; apiVersion: string } | undefined {
  const rekor = annotations[Annotation.bundle];
  if (rekor === undefined || rekor === "") return undefined;
  const bundle = rekorBundleSchema.parse(JSON.parse(rekor));
  const body = bodyKindSchema.parse(JSON.parse(Buffer.from(bundle.Payload.body, "base64").toString("utf8")));
  return { bundle, kind: body.kind, apiVersion: body.apiVersion };
}

const dsseEnvelopeSchema = z.object({
  payloadType: z.string().min(1),
  payload: z.string(),
  signatures: z.array(z.object({ keyid: z.string().optional(), sig: z.string().min(1) })).min(1),
});

function pemToDerBase64(pem: string): string[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) =>
    m[1]!.replace(/\s+/g, ""),
  );
}

/**
 * Verification material from a legacy layer's annotations: its certificate (and chain) when keyless,
 * else a key hint; and the Rekor entry from the cosign bundle annotation, whose SignedEntryTimestamp
 * becomes the tlog entry's inclusion promise (Rekor signs exactly body, integratedTime, logIndex
 * and logID, so the SET verifies over the same fields sigstore-js rebuilds).
 */
function verificationMaterial(annotations: Record<string, string>) {
  const certs = pemToDerBase64(annotations[Annotation.certificate] ?? "");
  const chain = pemToDerBase64(annotations[Annotation.chain] ?? "");
  const tlogEntries = [];
  const rekor = rekorAnnotation(annotations);
  if (rekor) {
    const { bundle: parsed, kind, apiVersion } = rekor;
    tlogEntries.push({
      logIndex: String(parsed.Payload.logIndex),
      logId: { keyId: Buffer.from(parsed.Payload.logID, "hex").toString("base64") },
      kindVersion: { kind, version: apiVersion },
      integratedTime: String(parsed.Payload.integratedTime),
      inclusionPromise: { signedEntryTimestamp: parsed.SignedEntryTimestamp },
      canonicalizedBody: parsed.Payload.body,
    });
  }
  const material =
    certs.length > 0
      ? { x509CertificateChain: { certificates: [...certs, ...chain].map((rawBytes) => ({ rawBytes })) } }
      : { publicKey: { hint: "" } };
  return { ...material, tlogEntries, timestampVerificationData: { rfc3161Timestamps: [] } };
}

/**
 * A legacy `.sig` layer as a message-signature bundle over the simple-signing payload. The payload
 * itself is the artifact; its digest is recomputed here, never taken from the layer.
 */
export function simpleSigningToBundle(layer: Descriptor, payloadSha256Hex: string): Bundle {
  const annotations = layer.annotations ?? {};
  const signature = annotations[Annotation.signature];
  if (signature === undefined || signature === "") throw new Error("the layer has no signature annotation");
  return bundleFromJSON({
    mediaType: BUNDLE_V01,
    verificationMaterial: verificationMaterial(annotations),
    messageSignature: {
      messageDigest: {
        algorithm: "SHA2_256",
        digest: Buffer.from(payloadSha256Hex, "hex").toString("base64"),
      },
      signature,
    },
  });
}

/** A legacy `.att` layer (a DSSE envelope blob) as a DSSE bundle. */
export function dsseLayerToBundle(layer: Descriptor, envelopeBytes: Uint8Array): Bundle {
  const envelope = dsseEnvelopeSchema.parse(JSON.parse(Buffer.from(envelopeBytes).toString("utf8")));
  return bundleFromJSON({
    mediaType: BUNDLE_V01,
    verificationMaterial: verificationMaterial(layer.annotations ?? {}),
    dsseEnvelope: {
      payloadType: envelope.payloadType,
      payload: envelope.payload,
      signatures: envelope.signatures.map((s) => ({ keyid: s.keyid ?? "", sig: s.sig })),
    },
  });
}
