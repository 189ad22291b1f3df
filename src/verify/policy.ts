import { createHash } from "node:crypto";
import { StartupError } from "../common/startup-error.ts";
import type { Authority } from "./authorities.ts";
import type { ProvenanceRule, SbomRule, SignatureRule } from "./checks.ts";
import type { SummaryRule } from "./summary.ts";

/** An environment's requirements, compiled once at config load. */
export interface CompiledRequirements {
  environment: string;
  signature?: SignatureRule & { multiArch: "index" | "index-and-platforms" };
  sbom?: SbomRule;
  provenance?: ProvenanceRule;
  summary?: SummaryRule;
  /** Every authority the policy names: each candidate is verified against these once. */
  authorities: string[];
  /**
   * SHA-256 over the requirements and the definitions of the authorities they name (keys by
   * fingerprint), so a cached decision never outlives a change of policy or of trust.
   */
  hash: string;
}

/** `environments[].require` as parsed from config. */
export interface RequireConfig {
  signature?: { authorities: string[]; count: number; multiArch: "index" | "index-and-platforms" };
  sbom?: { authorities: string[]; maxAge?: number };
  provenance?: { authorities: string[]; builderId?: string; sourceRepository?: string; ref?: string };
  summary?: { from: string; maxAge: number; verifier: string };
}

function describeAuthority(a: Authority | undefined): unknown {
  if (!a) return null;
  if (a.kind === "key") {
    return {
      key: createHash("sha256")
        .update(a.key.export({ format: "der", type: "spki" }))
        .digest("hex"),
      ...(a.bindsApp ? { bindsApp: true } : {}),
      ...(a.verifierId ? { verifierId: a.verifierId } : {}),
    };
  }
  return {
    issuer: a.issuer,
    subject: a.subjectText,
    extensions: a.extensions,
    root: a.root ?? null,
    ...(a.verifierId ? { verifierId: a.verifierId } : {}),
  };
}

/**
 * Compiles one environment's requirements (`environments[].require`). Not the trust policies of
 * `src/identity/policy.ts` (who may exchange a token or sign): these say what an artifact must carry.
 * `roots` names the trusted roots (part of the hash).
 */
export function compileRequirements(
  environment: string,
  require: RequireConfig,
  authorities: Map<string, Authority>,
  roots: string[],
): CompiledRequirements {
  const names = [
    ...new Set([
      ...(require.signature?.authorities ?? []),
      ...(require.sbom?.authorities ?? []),
      ...(require.provenance?.authorities ?? []),
      ...(require.summary ? [require.summary.verifier] : []),
    ]),
  ];
  const summary = require.summary && summaryRule(environment, require.summary, authorities);
  const policy: Omit<CompiledRequirements, "hash"> = {
    environment,
    ...(require.signature ? { signature: { ...require.signature } } : {}),
    ...(require.sbom
      ? {
          sbom: {
            authorities: require.sbom.authorities,
            ...(require.sbom.maxAge ? { maxAgeMs: require.sbom.maxAge } : {}),
          },
        }
      : {}),
    ...(require.provenance ? { provenance: { ...require.provenance } } : {}),
    ...(summary ? { summary } : {}),
    authorities: names,
  };
  const material = JSON.stringify({
    policy,
    roots,
    authorities: Object.fromEntries(names.sort().map((n) => [n, describeAuthority(authorities.get(n))])),
  });
  return { ...policy, hash: createHash("sha256").update(material).digest("hex") };
}

/** The summary requirement with its signer's verifier id (the config schema checks that it has one). */
function summaryRule(
  environment: string,
  summary: NonNullable<RequireConfig["summary"]>,
  authorities: Map<string, Authority>,
): SummaryRule {
  const verifierId = authorities.get(summary.verifier)?.verifierId;
  if (verifierId === undefined) {
    throw new StartupError([
      {
        path: `environments[${environment}].require.summary.verifier`,
        message: `authority ${summary.verifier} has no verifierId`,
      },
    ]);
  }
  return { from: summary.from, maxAgeMs: summary.maxAge, authority: summary.verifier, verifierId };
}
