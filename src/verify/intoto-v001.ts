import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import type { Bundle } from "@sigstore/bundle";
import { dsse, json } from "@sigstore/core";
import type { SignedEntity, TrustMaterial } from "@sigstore/verify";
import { z } from "zod";
import type { Descriptor } from "../registry/manifest.ts";
import { type RekorBundleAnnotation, rekorAnnotation } from "./legacy.ts";
import type { CandidateReason } from "./report.ts";

/**
 * Rekor `intoto` v0.0.1 entries: what cosign 1.x and 2.x (`--rekor-entry-type intoto`) logged for
 * attestations from 2022 to 2024. `@sigstore/verify` refuses them ("unsupported intoto version");
 * cosign accepts them. Ferry verifies the log entry itself, with the checks cosign's `VerifyBundle`
 * and `CheckExpiry` make (SET, envelope hash, public key, certificate validity at integrated time),
 * then hands `@sigstore/verify` the same entity without that entry: the library still checks the
 * certificate chain at the (now verified) integrated time and the DSSE signature, and Ferry then
 * matches the identity as for any keyless signer.
 */

/** A trusted transparency log, as `@sigstore/verify` loads it from a TrustedRoot. */
export type TrustedLog = TrustMaterial["tlogs"][number];

/** The evidence a legacy `.att` layer carries for an `intoto` v0.0.1 log entry. */
export interface LegacyIntotoEntry {
  /** The DSSE envelope exactly as stored in the layer: the bytes cosign uploaded and Rekor hashed. */
  envelope: Buffer;
  /** The cosign bundle annotation: the SET and the fields it signs. */
  rekor: RekorBundleAnnotation;
}

/** Why an `intoto` v0.0.1 entry does not vouch for its envelope. */
export interface IntotoFailure {
  reason: CandidateReason;
  message: string;
}

/**
 * The entry of a legacy `.att` layer when its cosign bundle annotation logs an `intoto` v0.0.1
 * body; undefined for every other layer (those keep the library's path).
 */
export function legacyIntotoEntry(
  layer: Descriptor,
  envelopeBytes: Uint8Array,
): LegacyIntotoEntry | undefined {
  const rekor = rekorAnnotation(layer.annotations ?? {});
  if (rekor?.kind !== "intoto" || rekor.apiVersion !== "0.0.1") return undefined;
  return { envelope: Buffer.from(envelopeBytes), rekor: rekor.bundle };
}

// Rekor's schema allows sha256 only; the value is hex (Rekor itself writes it lower-case).
const hashSchema = z.object({ algorithm: z.literal("sha256"), value: z.string().regex(/^[0-9a-fA-F]{64}$/) });

/**
 * A committed `intoto` v0.0.1 body as Rekor canonicalises it (`V001Entry.Canonicalize`): the
 * envelope hash, the payload hash (absent from the oldest entries) and the signer's public key or
 * certificate as base64 PEM. The envelope itself is never in a committed body.
 */
const bodySchema = z.object({
  kind: z.literal("intoto"),
  apiVersion: z.literal("0.0.1"),
  spec: z.object({
    content: z.object({ hash: hashSchema, payloadHash: hashSchema.optional() }),
    publicKey: z.string().min(1),
  }),
});

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function safeVerify(algorithm: string | null, data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(algorithm, data, key, signature);
  } catch {
    return false;
  }
}

/**
 * The SET: a trusted log's ECDSA signature over the canonical JSON of {body, integratedTime,
 * logIndex, logID}, by a log whose ID is the entry's and whose key was valid at the integrated time
 * (sigstore-go `tlog.VerifySET`, which cosign's `VerifyBundle` calls; sigstore-js `verifyTLogSET`).
 */
function setFailure(rekor: RekorBundleAnnotation, tlogs: TrustedLog[]): string | undefined {
  const { body, integratedTime, logIndex, logID } = rekor.Payload;
  const at = new Date(integratedTime * 1000);
  const logId = Buffer.from(logID, "hex");
  const logs = tlogs.filter((t) => t.logID.equals(logId) && t.validFor.start <= at && at <= t.validFor.end);
  if (logs.length === 0) return `no trusted log has ID ${logID} with a key valid at ${at.toISOString()}`;
  const signed = Buffer.from(json.canonicalize({ body, integratedTime, logIndex, logID }), "utf8");
  const set = Buffer.from(rekor.SignedEntryTimestamp, "base64");
  const verified = logs.some(
    (t) => t.publicKey.asymmetricKeyType === "ec" && safeVerify("sha256", signed, t.publicKey, set),
  );
  return verified ? undefined : `the signed entry timestamp does not verify with the key of log ${logID}`;
}

/** DER of the single CERTIFICATE block of a PEM text; undefined for anything else (a key, two certs…). */
function pemCertificateDer(pem: string): Buffer | undefined {
  const m = /^\s*-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----\s*$/.exec(pem);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ""), "base64") : undefined;
}

/** The signing certificate's DER exactly as the layer annotation carried it. */
function signingCertificateDer(bundle: Bundle): Buffer | undefined {
  const material = bundle.verificationMaterial.content;
  if (material.$case === "x509CertificateChain")
    return material.x509CertificateChain.certificates[0]?.rawBytes;
  if (material.$case === "certificate") return material.certificate.rawBytes;
  return undefined;
}

/**
 * Verifies a legacy attestation's `intoto` v0.0.1 log entry against one trusted root's logs and
 * returns the entity `@sigstore/verify` should check without it (its transparency-log timestamp is
 * kept: after these checks it is the verified integrated time). Fails closed, each with its reason:
 *
 * 1. `tlog_set_invalid` — the SET does not verify with a trusted log key (see {@link setFailure}).
 * 2. `tlog_entry_malformed` — the signed body is not an `intoto` 0.0.1 body as Rekor writes it, or
 *    the bundle's entry is not the one the SET signs.
 * 3. `tlog_envelope_mismatch` — `spec.content.hash` is not the SHA-256 of the envelope as stored
 *    (cosign `VerifyBundle`/`bundleHash`: the hash must equal sha256 of the attestation payload,
 *    which for a `.att` layer is the envelope blob; Rekor's `V001Entry.validate` computed it over
 *    the envelope cosign uploaded), or `spec.content.payloadHash`, when present, is not the SHA-256
 *    of the DSSE payload (Rekor computed it server-side; the oldest entries lack it).
 * 4. `tlog_certificate_mismatch` — `spec.publicKey` is not one PEM certificate whose DER is the
 *    signing certificate's (cosign `comparePublicKey`).
 * 5. `tlog_time_outside_certificate` — the integrated time is outside the certificate's validity
 *    (cosign `CheckExpiry` with the bundle's integrated time).
 * 6. `signature_invalid` — the envelope does not carry exactly one signature, or it does not verify
 *    over the DSSE PAE with the certificate's key, SHA-256 (Rekor's `V001Entry.validate`, cosign's
 *    DSSE verifier).
 */
export function checkIntotoV001(
  entry: LegacyIntotoEntry,
  bundle: Bundle,
  entity: SignedEntity,
  tlogs: TrustedLog[],
): { entity: SignedEntity } | { failure: IntotoFailure } {
  const fail = (reason: CandidateReason, message: string) => ({ failure: { reason, message } });
  const { rekor } = entry;
  if (entity.key.$case !== "certificate") {
    return fail(
      "tlog_certificate_mismatch",
      "an intoto v0.0.1 entry is verified for a certificate signer only",
    );
  }
  if (bundle.content.$case !== "dsseEnvelope") {
    return fail("tlog_entry_malformed", "an intoto entry logs a DSSE envelope, and this is not one");
  }

  const setProblem = setFailure(rekor, tlogs);
  if (setProblem) return fail("tlog_set_invalid", setProblem);

  let body: z.infer<typeof bodySchema>;
  try {
    body = bodySchema.parse(JSON.parse(Buffer.from(rekor.Payload.body, "base64").toString("utf8")));
  } catch (err) {
    const detail = err instanceof Error ? err.message.slice(0, 200) : String(err);
    return fail("tlog_entry_malformed", `the logged body is not an intoto v0.0.1 entry: ${detail}`);
  }

  const envelopeHash = sha256Hex(entry.envelope);
  if (body.spec.content.hash.value !== envelopeHash) {
    return fail(
      "tlog_envelope_mismatch",
      `the log entry is for envelope sha256:${body.spec.content.hash.value}, the stored envelope is sha256:${envelopeHash}`,
    );
  }
  const envelope = bundle.content.dsseEnvelope;
  const payloadHash = body.spec.content.payloadHash;
  if (payloadHash && payloadHash.value !== sha256Hex(envelope.payload)) {
    return fail(
      "tlog_envelope_mismatch",
      `the log entry is for payload sha256:${payloadHash.value}, not this envelope's payload`,
    );
  }

  const loggedDer = pemCertificateDer(Buffer.from(body.spec.publicKey, "base64").toString("utf8"));
  const signingDer = signingCertificateDer(bundle);
  if (!loggedDer || !signingDer || !loggedDer.equals(signingDer)) {
    return fail(
      "tlog_certificate_mismatch",
      loggedDer
        ? "the log entry names another certificate than the one that signed the envelope"
        : "the log entry's public key is not a single PEM certificate",
    );
  }

  const certificate = entity.key.certificate;
  const at = new Date(rekor.Payload.integratedTime * 1000);
  if (!certificate.validForDate(at)) {
    return fail(
      "tlog_time_outside_certificate",
      `logged at ${at.toISOString()}, outside the certificate's validity ` +
        `(${certificate.notBefore.toISOString()} to ${certificate.notAfter.toISOString()})`,
    );
  }

  const signature = envelope.signatures.length === 1 ? envelope.signatures[0]!.sig : undefined;
  const key = createPublicKey({ key: certificate.publicKey, format: "der", type: "spki" });
  const pae = dsse.preAuthEncoding(envelope.payloadType, envelope.payload);
  if (!signature || !safeVerify(key.asymmetricKeyType === "ed25519" ? null : "sha256", pae, key, signature)) {
    return fail(
      "signature_invalid",
      signature
        ? "the envelope's signature does not verify with the certificate's key"
        : `the envelope carries ${envelope.signatures.length} signatures, expected exactly one`,
    );
  }

  // The entry the bundle was converted from must be the one whose SET verified: its timestamp is
  // what the library checks the certificate chain against once the entry itself is left out.
  const logged = Buffer.from(rekor.Payload.body, "base64");
  const matched = entity.tlogEntries.find(
    (e) =>
      e.kindVersion.kind === "intoto" &&
      e.kindVersion.version === "0.0.1" &&
      e.logIndex === String(rekor.Payload.logIndex) &&
      e.integratedTime === String(rekor.Payload.integratedTime) &&
      Buffer.from(e.canonicalizedBody).equals(logged),
  );
  if (!matched) return fail("tlog_entry_malformed", "the bundle does not carry the entry the SET signs");
  return { entity: { ...entity, tlogEntries: entity.tlogEntries.filter((e) => e !== matched) } };
}
