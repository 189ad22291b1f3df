/**
 * The SLSA verification summary (VSA) of a promotion, built from what Ferry already decided: pure,
 * no I/O, no clock (the time is handed in). Field by field after
 * https://slsa.dev/spec/v1.0/verification_summary (docs/evidence.md).
 */
import type { Check, VerificationReport } from "../verify/report.ts";
import { summaryPolicyUri, VSA_PREDICATE_TYPE } from "../verify/summary.ts";

export { VSA_PREDICATE_TYPE };

/** An in-toto ResourceDescriptor, as the VSA's `policy` and `inputAttestations` use it. */
export interface ResourceDescriptor {
  name?: string;
  uri: string;
  digest: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The `https://slsa.dev/verification_summary/v1` predicate Ferry writes. */
export interface VerificationSummary {
  verifier: { id: string };
  timeVerified: string;
  resourceUri: string;
  policy: ResourceDescriptor;
  inputAttestations: ResourceDescriptor[];
  verificationResult: "PASSED";
  verifiedLevels: string[];
  slsaVersion: "1.0";
}

/** What a summary is made of. */
export interface SummaryInput {
  /** Ferry's `server.publicUrl`. */
  verifierId: string;
  /** When the verification the summary reports ran (epoch ms). */
  timeVerified: number;
  /** Where the verified digest is: the target repository, `host/path`. */
  repository: string;
  digest: string;
  environment: string;
  /** The hash of the environment's compiled policy (SHA-256, hex). */
  policyHash: string;
  /** The verification the summary reports: it must have allowed the digest. */
  report: VerificationReport;
  /** `trust.builders`: SLSA build level per provenance builder id. */
  builders: Readonly<Record<string, number>>;
}

const hexOf = (digest: string) => digest.replace(/^sha256:/, "");

/**
 * The artifact as a Package URL (the ResourceURI form in-toto recommends), `pkg:oci` type: the name
 * is the repository's last path segment, the version the digest, `repository_url` the repository.
 * Colons are never percent-encoded in a purl.
 */
export function ociResourceUri(repository: string, digest: string): string {
  const name = (repository.split("/").at(-1) ?? repository).toLowerCase();
  return `pkg:oci/${name}@${digest}?repository_url=${repository}`;
}

/**
 * Every signature and attestation the checks accepted, once each: the blob in the repository
 * (`oci://host/path@sha256:…`, fetchable with `oras blob fetch` or `crane blob`) and its digest,
 * named by where it was found, with the manifest holding it (a legacy signature's signature is an
 * annotation of that manifest).
 */
export function inputAttestations(report: VerificationReport, repository: string): ResourceDescriptor[] {
  const seen = new Map<string, ResourceDescriptor>();
  for (const check of report.checks) {
    for (const c of check.details?.candidates ?? []) {
      if (c.reason !== "accepted" || seen.has(c.digest)) continue;
      seen.set(c.digest, {
        name: c.source,
        uri: `oci://${repository}@${c.digest}`,
        digest: { sha256: hexOf(c.digest) },
        ...(c.manifestDigest ? { annotations: { manifestDigest: c.manifestDigest } } : {}),
      });
    }
  }
  return [...seen.values()];
}

/**
 * The build level a passed provenance check shows, from `trust.builders`: the highest level of the
 * builders of the provenance it accepted. Nothing when the environment requires no provenance, or
 * when no accepted provenance's builder is listed: a level no configuration gives is never claimed.
 */
export function verifiedLevels(checks: Check[], builders: Readonly<Record<string, number>>): string[] {
  const provenance = checks.find((c) => c.name === "provenance" && c.passed);
  const levels = (provenance?.details?.candidates ?? [])
    .filter((c) => c.reason === "accepted" && c.builderId !== undefined)
    .map((c) => (Object.hasOwn(builders, c.builderId!) ? builders[c.builderId!] : undefined))
    .filter((level): level is number => level !== undefined);
  return levels.length === 0 ? [] : [`SLSA_BUILD_LEVEL_${Math.max(...levels)}`];
}

/** The summary of a verification that allowed the digest; throws for one that did not. */
export function verificationSummary(input: SummaryInput): VerificationSummary {
  const { report } = input;
  if (!report.allowed || report.digest !== input.digest || report.environment !== input.environment) {
    throw new Error(
      `the verification of ${report.digest} for ${report.environment} does not allow ${input.digest} into ${input.environment}`,
    );
  }
  const verifierId = input.verifierId.replace(/\/+$/, "");
  return {
    verifier: { id: verifierId },
    timeVerified: new Date(input.timeVerified).toISOString(),
    resourceUri: ociResourceUri(input.repository, input.digest),
    policy: {
      uri: summaryPolicyUri(verifierId, input.environment),
      digest: { sha256: input.policyHash },
    },
    inputAttestations: inputAttestations(report, input.repository),
    verificationResult: "PASSED",
    verifiedLevels: verifiedLevels(report.checks, input.builders),
    slsaVersion: "1.0",
  };
}
