import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import type { Clock } from "../common/clock.ts";
import { FerryError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import type { CompiledPolicy } from "../identity/policy.ts";
import { mismatchSummary } from "../identity/policy.ts";
import type { Principal } from "../identity/principal.ts";
import type { ArtifactWriter } from "../registry/ports.ts";
import type { DigestReference, RepositoryReference } from "../registry/reference.ts";
import { parseDigestReference } from "../registry/reference.ts";
import { type HeldLease, LeaseBusyError, LeaseLostError, type LeaseOptions } from "../store/leases.ts";
import { attestationLayer, bundleReferrer, signatureLayer, signStatement } from "./attachments.ts";
import { COSIGN, type DsseEnvelope, pae } from "./formats.ts";
import { checkPredicate } from "./predicates.ts";
import { appendLegacyLayer, attachBundle, type Published } from "./publish.ts";
import type { Signer } from "./signer.ts";

/** The predicate type of a Sigstore-bundle image signature (what cosign 3 writes for `sign`). */
export const SIGNATURE_PREDICATE = "https://sigstore.dev/cosign/sign/v1";

/** One attestation a pipeline asks for. */
export interface AttestationRequest {
  predicateType: string;
  predicate: unknown;
}

/** What `POST /v1/signatures` asks. */
export interface SignRequest {
  image: string;
  attestations: AttestationRequest[];
}

/** One thing signed (or found already signed), in one storage format. */
export interface SignedItem {
  /** `signature`, or the attestation's predicate type. */
  kind: string;
  format: "cosign-legacy" | "sigstore-bundle";
  status: Published["status"];
  location: string;
}

/** The answer of a signing request. */
export interface SignResult {
  image: string;
  app: string;
  keyId: string;
  items: SignedItem[];
}

/** Where signings are recorded (the store in production). */
export interface SigningRecords {
  /** Records every item of one request together: all of them or, on failure, none. */
  record(entry: SigningRecord): Promise<void>;
}

/** The record of one signing request: who asked, for what, and each item signed or found. */
export interface SigningRecord {
  requestId: string;
  issuer: string;
  subject: string;
  tokenSha256: string;
  app: string;
  repository: string;
  digest: string;
  keyId: string;
  items: SignedItem[];
}

/** Runs work under a named, renewed lease across replicas (`Store.withLease`). */
export type LeaseRunner = <T>(
  name: string,
  options: LeaseOptions,
  fn: (lease: HeldLease, signal: AbortSignal) => Promise<T>,
) => Promise<T>;

/**
 * The lease held while a digest's signatures are updated. Registry round trips under it can take
 * longer than its TTL; the renewal keeps it, and the wait covers a concurrent request's whole run.
 */
export const SIGNING_LEASE: LeaseOptions = { ttl: 60_000, renewEvery: 20_000, wait: 20_000 };

/** What the signing service needs. */
export interface SigningServiceDeps {
  apps: readonly { name: string; images: Record<string, string> }[];
  /** Each app's compiled `pipelines` policy. */
  appPolicies: ReadonlyMap<string, CompiledPolicy>;
  writerFor(ref: RepositoryReference): ArtifactWriter;
  signer: Signer;
  records: SigningRecords;
  withLease: LeaseRunner;
  /** Default {@link SIGNING_LEASE}. */
  lease?: LeaseOptions;
  logger: Logger;
  /** Largest accepted predicate (its JSON), bytes. */
  maxPredicateBytes: number;
  /** Most attestations in one request. */
  maxAttestations: number;
  /** Name the requesting pipeline in the `.sig` payload's optional annotations. */
  annotate: boolean;
  /** Dates the bundles' timestamps. */
  clock: Clock;
}

const b64decode = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

/** `host/repository`, the form apps list their images in. */
function repositoryName(ref: RepositoryReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** Claims naming the run, by platform: what a reader of a signature wants to trace it back to. */
function pipelineAnnotations(principal: Principal): Record<string, string> {
  const c = principal.claims;
  const pick = (...names: string[]) => {
    for (const n of names) {
      const v = c[n];
      if (typeof v === "string" || typeof v === "number") return String(v);
    }
    return undefined;
  };
  const out: Record<string, string> = {
    "ferry.issuer": principal.issuer.url,
    "ferry.subject": principal.subject,
  };
  const repository = pick("repository", "project_path", "pipeline_slug");
  const sha = pick("sha", "build_commit");
  const run = pick("run_id", "pipeline_id", "build_number");
  if (repository) out["ferry.repository"] = repository;
  if (sha) out["ferry.sha"] = sha;
  if (run) out["ferry.run"] = run;
  return out;
}

/**
 * Signs image digests and attests SBOMs and provenance for authenticated pipelines, with Ferry's
 * key, in both storage formats: cosign's legacy `.sig`/`.att` tags and Sigstore bundles attached as
 * OCI referrers. Appends, never replaces; a repeated request writes nothing new.
 */
export class SigningService {
  readonly #deps: SigningServiceDeps;
  readonly #publicKey: ReturnType<typeof createPublicKey>;

  constructor(deps: SigningServiceDeps) {
    this.#deps = deps;
    this.#publicKey = createPublicKey(deps.signer.publicKeyPem);
  }

  /** The app owning the repository, and the pipeline's right to act for it; 403 otherwise. */
  authorize(principal: Principal, ref: DigestReference, requestId: string): string {
    const repository = repositoryName(ref);
    const app = this.#deps.apps.find((a) => Object.values(a.images).includes(repository));
    if (app === undefined) {
      throw new FerryError(
        "forbidden",
        `no app owns ${repository}; Ferry signs only images of repositories listed in apps[].images`,
      );
    }
    if (principal.kind !== "pipeline") {
      throw new FerryError(
        "forbidden",
        "only pipelines may ask Ferry to sign; present the pipeline's OIDC token",
      );
    }
    if (principal.via !== "oidc") {
      throw new FerryError(
        "forbidden",
        "sign with the pipeline platform's own OIDC token, not a Ferry-minted credential",
      );
    }
    const policy = this.#deps.appPolicies.get(app.name);
    const subject = { issuer: principal.issuer.name, claims: principal.claims };
    if (policy?.match(subject) === undefined) {
      this.#deps.logger.info(
        {
          requestId,
          app: app.name,
          issuer: principal.issuer.name,
          sub: principal.subject.slice(0, 200),
          rules: policy ? mismatchSummary(policy.evaluate(subject)) : [],
        },
        "signing refused: pipeline does not match the app's pipelines",
      );
      throw new FerryError(
        "forbidden",
        `this pipeline is not one of app ${app.name}'s pipelines (see apps[].pipelines)`,
      );
    }
    return app.name;
  }

  /** Checks the request, then signs and attests; see {@link SigningService}. */
  async sign(principal: Principal, request: SignRequest, requestId: string): Promise<SignResult> {
    const ref = parseDigestReference(request.image);
    const app = this.authorize(principal, ref, requestId);
    if (request.attestations.length > this.#deps.maxAttestations) {
      throw new FerryError(
        "validation_failed",
        `at most ${this.#deps.maxAttestations} attestations per request`,
      );
    }
    const seen = new Set<string>();
    for (const [i, a] of request.attestations.entries()) {
      const problem = checkPredicate(a.predicateType, a.predicate, this.#deps.maxPredicateBytes);
      if (problem) {
        throw new FerryError(
          problem.kind === "too_large" ? "payload_too_large" : "validation_failed",
          `attestations[${i}]: ${problem.message}`,
        );
      }
      if (seen.has(a.predicateType)) {
        throw new FerryError(
          "validation_failed",
          `attestations[${i}]: a second ${a.predicateType} predicate in one request`,
        );
      }
      seen.add(a.predicateType);
    }

    const writer = this.#deps.writerFor(ref);
    const repository = repositoryName(ref);
    const subject = await writer.findManifest(ref.digest);
    if (subject === undefined) {
      throw new FerryError(
        "not_found",
        `${repository}@${ref.digest} does not exist; push the image before asking Ferry to sign it`,
      );
    }

    const target = `${repository}@${ref.digest}`;
    const items = await this.#underLease(target, async (signal) => {
      const out: SignedItem[] = [];
      const annotations = this.#deps.annotate ? pipelineAnnotations(principal) : undefined;
      const sigLayer = await signatureLayer(this.#deps.signer, repository, ref.digest, annotations);
      // Each registry write is a step: once the lease is lost, another request may be writing the
      // same tags, so stop before the next one (what is already written stays, and is ours).
      signal.throwIfAborted();
      // The same payload (same digest) is ours only if the layer's signature verifies with our key:
      // another signer may have signed identical bytes.
      const legacySig = await appendLegacyLayer(writer, ref.digest, "sig", sigLayer, async (layer) => {
        const signature = layer.annotations?.[COSIGN.signatureAnnotation];
        return (
          layer.digest === sigLayer.descriptor.digest &&
          signature !== undefined &&
          this.#verifies(sigLayer.bytes, signature)
        );
      });
      out.push({ kind: "signature", format: "cosign-legacy", ...legacySig });

      const statements: { kind: string; predicateType: string; predicate: unknown }[] = [
        { kind: "signature", predicateType: SIGNATURE_PREDICATE, predicate: {} },
        ...request.attestations.map((a) => ({ kind: a.predicateType, ...a })),
      ];
      for (const s of statements) {
        const { envelope, payload } = await signStatement(
          this.#deps.signer,
          repository,
          ref.digest,
          s.predicateType,
          s.predicate,
        );
        const sameEnvelope = async (bytes: () => Promise<Uint8Array>) =>
          this.#isOurEnvelope(await bytes(), payload);
        if (s.kind !== "signature") {
          signal.throwIfAborted();
          const legacy = await appendLegacyLayer(
            writer,
            ref.digest,
            "att",
            attestationLayer(envelope, s.predicateType),
            (_d, bytes) => sameEnvelope(bytes),
          );
          out.push({ kind: s.kind, format: "cosign-legacy", ...legacy });
        }
        const referrer = bundleReferrer(
          this.#deps.signer,
          subject.descriptor,
          envelope,
          s.predicateType,
          new Date(this.#deps.clock.now()),
        );
        signal.throwIfAborted();
        const bundle = await attachBundle(writer, ref.digest, referrer, s.predicateType, (_d, bytes) =>
          this.#isOurBundle(bytes, payload),
        );
        out.push({ kind: s.kind, format: "sigstore-bundle", ...bundle });
      }
      return out;
    });

    await this.#deps.records.record({
      requestId,
      issuer: principal.issuer.url,
      subject: principal.subject,
      tokenSha256: principal.tokenSha256,
      app,
      repository,
      digest: ref.digest,
      keyId: this.#deps.signer.keyId,
      items,
    });
    this.#deps.logger.info(
      {
        requestId,
        app,
        repository,
        digest: ref.digest,
        keyId: this.#deps.signer.keyId,
        items: items.map((i) => `${i.kind} ${i.format} ${i.status}`),
      },
      "signed",
    );
    return { image: `${repository}@${ref.digest}`, app, keyId: this.#deps.signer.keyId, items };
  }

  /** Runs `fn` under the digest's lease; a busy or lost lease is a 409 the pipeline may retry. */
  async #underLease<T>(target: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await this.#deps.withLease(
        `sign:${target}`,
        this.#deps.lease ?? SIGNING_LEASE,
        (_lease, signal) => fn(signal),
      );
    } catch (err) {
      if (err instanceof LeaseBusyError)
        throw new FerryError("conflict", `another request is signing ${target}; try again`, { cause: err });
      if (err instanceof LeaseLostError) {
        this.#deps.logger.warn({ target, err }, "signing stopped: its lease was lost");
        throw new FerryError(
          "conflict",
          `signing ${target} was interrupted (another request took it over); try again`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  #verifies(data: Uint8Array, signatureB64: string): boolean {
    try {
      return cryptoVerify(
        "sha256",
        data,
        { key: this.#publicKey, dsaEncoding: "der" },
        b64decode(signatureB64),
      );
    } catch {
      return false;
    }
  }

  /** A DSSE envelope is ours when it carries the same statement and one signature verifies with our key. */
  #isOurEnvelope(bytes: Uint8Array, payload: Uint8Array): boolean {
    let envelope: DsseEnvelope;
    try {
      envelope = JSON.parse(new TextDecoder().decode(bytes)) as DsseEnvelope;
    } catch {
      return false;
    }
    if (typeof envelope.payload !== "string" || !Array.isArray(envelope.signatures)) return false;
    const theirs = b64decode(envelope.payload);
    if (Buffer.compare(Buffer.from(theirs), Buffer.from(payload)) !== 0) return false;
    const signed = pae(envelope.payloadType ?? COSIGN.inTotoPayloadType, theirs);
    return envelope.signatures.some((s) => typeof s?.sig === "string" && this.#verifies(signed, s.sig));
  }

  async #isOurBundle(bytes: () => Promise<Uint8Array>, payload: Uint8Array): Promise<boolean> {
    let bundle: { dsseEnvelope?: unknown };
    try {
      bundle = JSON.parse(new TextDecoder().decode(await bytes())) as typeof bundle;
    } catch {
      return false;
    }
    if (bundle.dsseEnvelope === undefined) return false;
    return this.#isOurEnvelope(new TextEncoder().encode(JSON.stringify(bundle.dsseEnvelope)), payload);
  }
}
