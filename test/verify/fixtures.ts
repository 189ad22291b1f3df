import { createHash, type KeyObject, sign } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { json as canonicalJson, dsse } from "@sigstore/core";
import { RegistryClient } from "../../src/registry/client.ts";
import { digestTag } from "../../src/registry/digest.ts";
import { parseManifest } from "../../src/registry/manifest.ts";
import { putReferrer } from "../../src/registry/referrers.ts";
import type { RegistryRepository } from "../../src/registry/registry-repository.ts";
import { type BuiltImage, buildImageLayout, pushImage } from "../support/images.ts";
import type { TestRegistry } from "../support/registry.ts";
import type { IssuedCertificate, LogEntryOptions, TestSigstore } from "../support/sigstore-ca.ts";

/** Builds and pushes a fresh image (new random digest) into `team/<repo>`; returns its digest and ref. */
export async function pushFresh(
  reg: TestRegistry,
  dir: string,
  name: string,
  platforms?: { os: string; architecture: string }[],
): Promise<{ digest: string; ref: string; built: BuiltImage }> {
  const built = await buildImageLayout(join(dir, name), platforms ? { platforms } : {});
  const digest = await pushImage(built.dir, reg, `team/app:${name}`);
  return { digest, ref: `${reg.host}/team/app@${digest}`, built };
}

/** The real registry client, for one test registry. */
export function clientFor(reg: TestRegistry): RegistryClient {
  return new RegistryClient({
    registries: [
      {
        url: reg.url,
        ...(reg.username ? { auth: { username: reg.username, password: reg.password ?? "" } } : {}),
      },
    ],
    timeoutMs: 10_000,
    retry: { retries: 0 },
  });
}

/** An in-toto statement about `digest`. */
export function statement(digest: string, predicateType: string, predicate: unknown) {
  return {
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ name: "team/app", digest: { sha256: digest.replace(/^sha256:/, "") } }],
    predicateType,
    predicate,
  };
}

/**
 * A keyless bundle v0.3 as Fulcio and Rekor would make it: a DSSE envelope signed by the
 * certificate's key, and a `dsse` 0.0.1 log entry (SET and/or inclusion proof with checkpoint).
 */
export function keylessDsseBundle(
  sigstore: TestSigstore,
  cert: IssuedCertificate,
  payload: unknown,
  opts: LogEntryOptions & { tamper?: (payload: Buffer) => Buffer } = {},
): Record<string, unknown> {
  const payloadType = "application/vnd.in-toto+json";
  const bytes = Buffer.from(JSON.stringify(payload));
  const sig = sign("sha256", dsse.preAuthEncoding(payloadType, bytes), cert.privateKey);
  const envelope = {
    payloadType,
    payload: bytes.toString("base64"),
    signatures: [{ sig: sig.toString("base64"), keyid: "" }],
  };
  const body = {
    apiVersion: "0.0.1",
    kind: "dsse",
    spec: {
      envelopeHash: {
        algorithm: "sha256",
        value: createHash("sha256").update(JSON.stringify(envelope)).digest("hex"),
      },
      payloadHash: { algorithm: "sha256", value: createHash("sha256").update(bytes).digest("hex") },
      signatures: [{ signature: sig.toString("base64"), verifier: Buffer.from(cert.pem).toString("base64") }],
    },
  };
  const entry = sigstore.logEntry(body, opts);
  const shipped = opts.tamper ? opts.tamper(bytes) : bytes;
  return {
    mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    verificationMaterial: { certificate: { rawBytes: cert.der.toString("base64") }, tlogEntries: [entry] },
    dsseEnvelope: { ...envelope, payload: shipped.toString("base64") },
  };
}

/** Knobs for {@link legacyIntotoLayer}: each makes one thing about the logged entry wrong. */
export interface LegacyIntotoOptions {
  /** The certificate the entry's `spec.publicKey` names (default: the signer's). */
  loggedCertificate?: IssuedCertificate;
  /** The envelope whose hash the entry logs (default: the one stored). */
  loggedEnvelope?: Buffer;
  /** The payload whose hash the entry logs (default: the envelope's); `null` omits it, as the oldest entries do. */
  loggedPayload?: Buffer | null;
  /** Sign the envelope with this key instead of the certificate's. */
  signingKey?: KeyObject;
  integratedTime?: Date;
  /** Changes the body before it is logged (the log signs whatever it is given). */
  tamperBody?: (body: { spec: { content: Record<string, unknown> } }) => void;
  /** Sign the SET with this key instead of the log's, claiming `logId` (default: the trusted log's ID). */
  forgedSet?: { key: KeyObject; logId?: Buffer };
}

/**
 * A legacy `.att` layer as cosign 1.x/2.x (`--rekor-entry-type intoto`) wrote it: the DSSE envelope
 * blob, and annotations with the certificate, the CA chain and the `dev.sigstore.cosign/bundle`
 * Rekor answer for an `intoto` v0.0.1 entry whose body is what Rekor canonicalises (envelope hash,
 * payload hash, base64 PEM certificate) — logged and SET-signed by the test log key.
 */
export function legacyIntotoLayer(
  sigstore: TestSigstore,
  cert: IssuedCertificate,
  payload: unknown,
  predicateType: string,
  opts: LegacyIntotoOptions = {},
): { envelope: Buffer; annotations: Record<string, string> } {
  const payloadType = "application/vnd.in-toto+json";
  const bytes = Buffer.from(JSON.stringify(payload));
  const sig = sign("sha256", dsse.preAuthEncoding(payloadType, bytes), opts.signingKey ?? cert.privateKey);
  const envelope = Buffer.from(
    JSON.stringify({
      payloadType,
      payload: bytes.toString("base64"),
      signatures: [{ keyid: "", sig: sig.toString("base64") }],
    }),
  );
  const hash = (b: Buffer) => ({ algorithm: "sha256", value: createHash("sha256").update(b).digest("hex") });
  const loggedPayload = opts.loggedPayload === undefined ? bytes : opts.loggedPayload;
  const body = {
    apiVersion: "0.0.1",
    kind: "intoto",
    spec: {
      content: {
        hash: hash(opts.loggedEnvelope ?? envelope),
        ...(loggedPayload ? { payloadHash: hash(loggedPayload) } : {}),
      },
      publicKey: Buffer.from((opts.loggedCertificate ?? cert).pem).toString("base64"),
    },
  };
  opts.tamperBody?.(body);
  const entry = sigstore.logEntry(body, {
    set: opts.forgedSet === undefined,
    proof: false,
    ...(opts.integratedTime ? { integratedTime: opts.integratedTime } : {}),
  });
  const logId = opts.forgedSet?.logId ?? Buffer.from(entry.logId.keyId, "base64");
  const signed = {
    body: entry.canonicalizedBody,
    integratedTime: Number(entry.integratedTime),
    logIndex: Number(entry.logIndex),
    logID: logId.toString("hex"),
  };
  const set = opts.forgedSet
    ? sign("sha256", Buffer.from(canonicalJson.canonicalize(signed)), opts.forgedSet.key).toString("base64")
    : entry.inclusionPromise!.signedEntryTimestamp;
  const ca = (
    sigstore.trustedRoot.certificateAuthorities as { certChain: { certificates: { rawBytes: string }[] } }[]
  )[0]!.certChain.certificates[0]!.rawBytes;
  const caPem = `-----BEGIN CERTIFICATE-----\n${ca.replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`;
  return {
    envelope,
    annotations: {
      "dev.cosignproject.cosign/signature": "",
      "dev.sigstore.cosign/certificate": cert.pem,
      "dev.sigstore.cosign/chain": caPem,
      "dev.sigstore.cosign/bundle": JSON.stringify({ SignedEntryTimestamp: set, Payload: signed }),
      predicateType,
    },
  };
}

/** Writes layers under `subjectDigest`'s legacy `.att` tag, as cosign does. */
export async function putLegacyAttestations(
  repo: RegistryRepository,
  subjectDigest: string,
  layers: { envelope: Buffer; annotations: Record<string, string> }[],
) {
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "", os: "", config: {} }));
  const configDescriptor = {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: `sha256:${createHash("sha256").update(config).digest("hex")}`,
    size: config.byteLength,
  };
  await repo.putBlob(configDescriptor, config);
  const descriptors = [];
  for (const { envelope, annotations } of layers) {
    const descriptor = {
      mediaType: "application/vnd.dsse.envelope.v1+json",
      digest: `sha256:${createHash("sha256").update(envelope).digest("hex")}`,
      size: envelope.byteLength,
    };
    await repo.putBlob(descriptor, new Uint8Array(envelope));
    descriptors.push({ ...descriptor, annotations });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: configDescriptor,
    layers: descriptors,
  };
  await repo.putManifest(new TextEncoder().encode(JSON.stringify(manifest)), manifest.mediaType, {
    tag: `${digestTag(subjectDigest)}.att`,
  });
}

const BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/**
 * Attaches a bundle to `subjectDigest` as cosign does on a registry without the referrers API: an
 * OCI manifest with that subject (pushed with the registry client), listed in the fallback index
 * with the empty artifact type, so a reader must fetch the manifest to know what it is.
 */
export async function attachBundle(
  repo: RegistryRepository,
  subjectDigest: string,
  bundle: unknown,
  predicateType?: string,
) {
  const subject = await repo.fetchManifest(subjectDigest);
  const bytes = new TextEncoder().encode(JSON.stringify(bundle));
  const layer = {
    mediaType: BUNDLE_TYPE,
    digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    size: bytes.byteLength,
  };
  const empty = new TextEncoder().encode("{}");
  const config = {
    mediaType: "application/vnd.oci.empty.v1+json",
    digest: `sha256:${createHash("sha256").update(empty).digest("hex")}`,
    size: 2,
  };
  await repo.putBlob(layer, bytes);
  await repo.putBlob(config, empty);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: BUNDLE_TYPE,
    config,
    layers: [layer],
    subject: {
      mediaType: subject.descriptor.mediaType,
      digest: subjectDigest,
      size: subject.bytes.byteLength,
    },
    annotations: predicateType ? { "dev.sigstore.bundle.predicateType": predicateType } : {},
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  parseManifest(manifestBytes, manifest.mediaType, "fixture");
  await putReferrer(repo, manifestBytes, manifest.mediaType);
}

/** Predicates as their tools write them. */
export const Predicates = {
  spdx: () => ({
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: "team/app",
    documentNamespace: "https://ferry.test/spdx/app",
    creationInfo: { created: new Date().toISOString(), creators: ["Tool: syft-1.0"] },
    packages: [],
  }),
  cyclonedx: () => ({
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    version: 1,
    metadata: { timestamp: new Date().toISOString() },
    components: [],
  }),
  slsa02: (repo: string, ref: string, builder: string) => ({
    builder: { id: builder },
    buildType: "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
    invocation: {
      configSource: {
        uri: `git+${repo}@${ref}`,
        digest: { sha1: "a".repeat(40) },
        entryPoint: ".github/workflows/release.yml",
      },
    },
    materials: [{ uri: `git+${repo}@${ref}`, digest: { sha1: "a".repeat(40) } }],
  }),
  slsa1: (repo: string, ref: string, builder: string) => ({
    buildDefinition: {
      buildType: "https://actions.github.io/buildtypes/workflow/v1",
      externalParameters: { workflow: { ref, repository: repo, path: ".github/workflows/release.yml" } },
      resolvedDependencies: [{ uri: `git+${repo}@${ref}`, digest: { gitCommit: "a".repeat(40) } }],
    },
    runDetails: { builder: { id: builder }, metadata: { invocationId: "1" } },
  }),
};

/** Writes a predicate to a file for `cosign attest --predicate`. */
export async function predicateFile(dir: string, name: string, predicate: unknown): Promise<string> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(predicate));
  return file;
}

/** The keyless release identity the verify tests sign and trust (GitHub Actions shaped). */
export const Identity = {
  issuer: "https://token.actions.githubusercontent.com",
  release: "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main",
  repository: "https://github.com/acme/web",
  ref: "refs/heads/main",
} as const;
