/**
 * `GET /v1/policies/{environment}`: what the `policy.uri` of every summary and approval attestation
 * names. Built once at config load from the validated config, so the URI in a statement resolves to
 * the policy Ferry decides by now, with the hashes the statements carry.
 */
import type { FerryConfig } from "../config/schema.ts";
import { environmentPolicyHash } from "../promotion/approvals/compile.ts";
import { summaryPolicyUri } from "../verify/summary.ts";

/** One environment's policy document. */
export interface PolicyDocument {
  environment: string;
  /** The URI statements name it by: `<server.publicUrl>/v1/policies/<environment>`. */
  uri: string;
  /**
   * The environment's validated config entry (defaults filled in, durations in ms): its `require`,
   * `approvals`, `promoters`, `after`, `soak`, `freeze`, `breakGlass`, `evidence`. It holds no secret
   * (secrets live in other sections of the config).
   */
  config: FerryConfig["environments"][number];
  hashes: {
    /**
     * SHA-256 (hex) of the RFC 8785 canonical JSON of `config`: the hash approvals are bound to
     * (an approval attestation's `policy.digest.sha256`). Recomputable from `config` alone.
     */
    environment: string;
    /**
     * The hash of the compiled `require` policy: a verification summary's `policy.digest.sha256`.
     * It also covers the key fingerprints of the authorities `require` names and the trusted roots,
     * so it is not recomputable from `config` alone. Null when the environment has no policy.
     */
    require: string | null;
  };
}

/** Every environment's policy document, by name. */
export function policyDocuments(
  config: Pick<FerryConfig, "environments"> & { server: { publicUrl: string } },
  requireHash: (environment: string) => string | undefined,
): ReadonlyMap<string, PolicyDocument> {
  const out = new Map<string, PolicyDocument>();
  for (const entry of config.environments) {
    out.set(entry.name, {
      environment: entry.name,
      uri: summaryPolicyUri(config.server.publicUrl, entry.name),
      config: entry,
      hashes: { environment: environmentPolicyHash(entry), require: requireHash(entry.name) ?? null },
    });
  }
  return out;
}
