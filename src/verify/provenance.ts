import { z } from "zod";

/** What a SLSA provenance predicate says about where an artifact came from. */
export interface ProvenanceFacts {
  builderId?: string;
  /** Normalised: no `git+` prefix, no trailing `.git`. */
  sourceRepository?: string;
  ref?: string;
}

const v02 = z.object({
  builder: z.object({ id: z.string() }),
  invocation: z.object({ configSource: z.object({ uri: z.string().optional() }).optional() }).optional(),
  materials: z.array(z.object({ uri: z.string().optional() })).optional(),
});

const v1 = z.object({
  buildDefinition: z.object({
    externalParameters: z.record(z.string(), z.unknown()).optional(),
    resolvedDependencies: z.array(z.object({ uri: z.string().optional() })).optional(),
  }),
  runDetails: z.object({ builder: z.object({ id: z.string() }) }),
});

const workflowSchema = z.object({ repository: z.string(), ref: z.string().optional() });

/** Normalises a repository URL for comparison. */
export function normaliseRepository(uri: string): string {
  return uri
    .replace(/^git\+/, "")
    .replace(/\.git$/, "")
    .replace(/\/+$/, "");
}

/** Splits `git+https://host/org/repo@refs/heads/main` into repository and ref. */
function splitGitUri(uri: string | undefined): { sourceRepository?: string; ref?: string } {
  if (!uri) return {};
  const at = uri.lastIndexOf("@");
  const hasRef = at > uri.indexOf("://") + 3;
  const repo = normaliseRepository(hasRef ? uri.slice(0, at) : uri);
  return { sourceRepository: repo, ...(hasRef ? { ref: uri.slice(at + 1) } : {}) };
}

/**
 * Reads builder, source repository and ref from a SLSA v0.2 or v1 predicate. v1: GitHub's
 * generator records `externalParameters.workflow.{repository, ref}`; other builders the first
 * resolved dependency's `git+…@ref` URI. v0.2: `invocation.configSource.uri`, else the first material.
 * Throws when the predicate does not have the version's required shape.
 */
export function provenanceFacts(version: "v0.2" | "v1", predicate: unknown): ProvenanceFacts {
  if (version === "v0.2") {
    const p = v02.parse(predicate);
    const source = splitGitUri(p.invocation?.configSource?.uri ?? p.materials?.[0]?.uri);
    return { builderId: p.builder.id, ...source };
  }
  const p = v1.parse(predicate);
  const workflow = workflowSchema.safeParse(p.buildDefinition.externalParameters?.workflow);
  const source = workflow.success
    ? {
        sourceRepository: normaliseRepository(workflow.data.repository),
        ...(workflow.data.ref ? { ref: workflow.data.ref } : {}),
      }
    : splitGitUri(p.buildDefinition.resolvedDependencies?.[0]?.uri);
  return { builderId: p.runDetails.builder.id, ...source };
}
