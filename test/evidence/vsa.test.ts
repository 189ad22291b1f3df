import { describe, expect, it } from "vitest";
import {
  inputAttestations,
  ociResourceUri,
  verificationSummary,
  verifiedLevels,
} from "../../src/evidence/vsa.ts";
import { type Check, decide } from "../../src/verify/report.ts";
import { resourceDigest, summaryPolicyUri } from "../../src/verify/summary.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const REPO = "127.0.0.1:5000/prod/web";
const BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v2.0.0";
const blob = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

function accepted(n: number, extra: Record<string, unknown> = {}) {
  return {
    source: `tag sha256-….att layer ${n}`,
    digest: blob(n),
    manifestDigest: blob(n + 5),
    reason: "accepted" as const,
    message: "verified",
    ...extra,
  };
}

const signature: Check = {
  name: "signature",
  passed: true,
  reason: "verified",
  message: "signed by ci",
  details: {
    candidates: [
      accepted(1),
      // Seen but not relied on: not an input.
      { source: "tag sha256-….sig layer 1", digest: blob(2), reason: "untrusted_key", message: "no" },
    ],
  },
};
const provenance = (builderId: string): Check => ({
  name: "provenance",
  passed: true,
  reason: "verified",
  message: "SLSA provenance attested by ci",
  details: { candidates: [accepted(3, { builderId, predicateType: "https://slsa.dev/provenance/v1" })] },
});

const input = (checks: Check[], builders: Record<string, number> = {}) => ({
  verifierId: "https://ferry.example.com/",
  timeVerified: Date.UTC(2026, 11, 1, 9, 30),
  repository: REPO,
  digest: DIGEST,
  environment: "production",
  policyHash: "c".repeat(64),
  report: decide(DIGEST, "production", checks),
  builders,
});

describe("the verification summary (https://slsa.dev/spec/v1.0/verification_summary)", () => {
  it("has every required field of the predicate, as the spec names them", () => {
    const vsa = verificationSummary(input([signature, provenance(BUILDER)], { [BUILDER]: 3 }));
    expect(vsa).toEqual({
      verifier: { id: "https://ferry.example.com" },
      timeVerified: "2026-12-01T09:30:00.000Z",
      resourceUri: `pkg:oci/web@${DIGEST}?repository_url=${REPO}`,
      policy: { uri: "https://ferry.example.com/v1/policies/production", digest: { sha256: "c".repeat(64) } },
      inputAttestations: [
        {
          name: "tag sha256-….att layer 1",
          uri: `oci://${REPO}@${blob(1)}`,
          digest: { sha256: blob(1).slice(7) },
          annotations: { manifestDigest: blob(6) },
        },
        {
          name: "tag sha256-….att layer 3",
          uri: `oci://${REPO}@${blob(3)}`,
          digest: { sha256: blob(3).slice(7) },
          annotations: { manifestDigest: blob(8) },
        },
      ],
      verificationResult: "PASSED",
      verifiedLevels: ["SLSA_BUILD_LEVEL_3"],
      slsaVersion: "1.0",
    });
  });

  it("claims no build level without a provenance requirement, or for a builder trust.builders does not list", () => {
    expect(verificationSummary(input([signature], { [BUILDER]: 3 })).verifiedLevels).toEqual([]);
    expect(verifiedLevels([provenance("https://elsewhere.example/builder")], { [BUILDER]: 3 })).toEqual([]);
    // A name that is a property of every object is not a configured builder.
    expect(verifiedLevels([provenance("constructor")], {})).toEqual([]);
    const failed = { ...provenance(BUILDER), passed: false, reason: "no_trusted_provenance" as const };
    expect(verifiedLevels([failed], { [BUILDER]: 3 })).toEqual([]);
    expect(verifiedLevels([provenance(BUILDER)], { [BUILDER]: 0 })).toEqual(["SLSA_BUILD_LEVEL_0"]);
  });

  it("lists each relied-on item once, however many checks accepted it", () => {
    const sbom: Check = { ...signature, name: "sbom", details: { candidates: [accepted(1)] } };
    expect(inputAttestations(decide(DIGEST, "production", [signature, sbom]), REPO)).toHaveLength(1);
  });

  it("is never written for a verification that did not allow the digest", () => {
    const denied = { ...signature, passed: false, reason: "no_trusted_signature" as const };
    expect(() => verificationSummary(input([denied]))).toThrow(/does not allow/);
    expect(() => verificationSummary({ ...input([signature]), environment: "staging" })).toThrow(
      /does not allow/,
    );
  });

  it("names the digest so the summary gate reads it back, and the policy per environment", () => {
    expect(resourceDigest(ociResourceUri(REPO, DIGEST))).toBe(DIGEST);
    expect(resourceDigest(`pkg:oci/web@sha256%3A${"ab".repeat(32)}?repository_url=x`)).toBe(DIGEST);
    expect(resourceDigest(`pkg:oci/web@sha256:${"ab".repeat(31)}?repository_url=x`)).toBeUndefined();
    expect(summaryPolicyUri("https://ferry.example.com/", "staging")).toBe(
      "https://ferry.example.com/v1/policies/staging",
    );
  });
});
