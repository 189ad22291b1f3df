import { assess } from "./assess.ts";
import type { RepositoryScope } from "./binding.ts";
import { provenanceCheck, sbomCheck, signatureCheck } from "./checks.ts";
import type { Discovery } from "./discovery.ts";
import type { CompiledRequirements } from "./policy.ts";
import type { Check } from "./report.ts";
import { summaryCheck } from "./summary.ts";
import type { TrustContext } from "./trust-context.ts";

/** What was discovered for an index's platform manifests, when the policy asks about them. */
export interface PlatformDiscovery {
  digest: string;
  platform: string;
  discovery: Discovery;
}

/**
 * The pure decision: trust material, policy and discovered bytes in, checks out. No I/O, no clock
 * other than `now` (SBOM age). Every candidate is verified once against the union of the policy's
 * authorities; each check then reads the assessments with its own authorities.
 */
export function evaluate(
  policy: CompiledRequirements,
  ctx: TrustContext,
  discovery: Discovery,
  platforms: PlatformDiscovery[],
  now: Date,
  scope?: RepositoryScope,
): Check[] {
  const digest = discovery.subject.digest;
  const assessments = assess(discovery.candidates, digest, policy.authorities, ctx, scope);
  const checks: Check[] = [];
  if (policy.signature) {
    const check = signatureCheck(assessments, policy.signature);
    if (!check.passed && discovery.subject.manifest.kind === "index") {
      check.message +=
        " (an image index needs its own signature: one on a platform manifest does not count for it)";
    }
    checks.push(check);
    for (const p of platforms) {
      const own = assess(p.discovery.candidates, p.digest, policy.signature.authorities, ctx, scope);
      const c = signatureCheck(own, policy.signature, "platform-signature");
      checks.push({
        ...c,
        ...(c.passed ? {} : { reason: "platform_unsigned" as const }),
        message: `${p.platform} (${p.digest}): ${c.message}`,
        details: { ...c.details, platform: p.platform, platformDigest: p.digest, platformReason: c.reason },
      });
    }
  }
  if (policy.sbom) checks.push(sbomCheck(assessments, policy.sbom, now));
  if (policy.provenance) checks.push(provenanceCheck(assessments, policy.provenance));
  if (policy.summary) checks.push(summaryCheck(assessments, policy.summary, digest, now));
  if (checks.length === 0) {
    checks.push({
      name: "policy",
      passed: true,
      reason: "not_required",
      message: `environment ${policy.environment} requires no signatures or attestations`,
    });
  }
  return checks;
}
