import { z } from "zod";

/**
 * The predicate types a pipeline may ask Ferry to attest, each with the schema its predicate must
 * pass. The URIs are the ones cosign's `--type` names map to (`spdxjson`, `cyclonedx`,
 * `slsaprovenance1`), so `cosign verify-attestation --type …` finds what Ferry wrote.
 */
export const PREDICATE_TYPES = {
  spdx: "https://spdx.dev/Document",
  cyclonedx: "https://cyclonedx.org/bom",
  slsaProvenanceV1: "https://slsa.dev/provenance/v1",
} as const;

const spdx2 = z.looseObject({
  spdxVersion: z.string().regex(/^SPDX-2\.\d+$/, 'expected "SPDX-2.x"'),
  SPDXID: z.literal("SPDXRef-DOCUMENT"),
  name: z.string().min(1),
  dataLicense: z.string().min(1),
});

const spdx3 = z.looseObject({
  "@context": z
    .union([z.string(), z.array(z.unknown())])
    .refine((c) => JSON.stringify(c).includes("spdx.org/rdf/3"), {
      message: "expected an SPDX 3 JSON-LD @context",
    }),
  "@graph": z.array(z.looseObject({ type: z.string() })).min(1),
});

const cyclonedx = z.looseObject({
  bomFormat: z.literal("CycloneDX"),
  specVersion: z.string().regex(/^1\.\d+$/, 'expected "1.x"'),
});

const slsaV1 = z.looseObject({
  buildDefinition: z.looseObject({
    buildType: z.string().min(1),
    externalParameters: z.record(z.string(), z.unknown()),
  }),
  runDetails: z.looseObject({
    builder: z.looseObject({ id: z.string().min(1) }),
  }),
});

const SCHEMAS: Record<string, z.ZodType> = {
  [PREDICATE_TYPES.spdx]: z.union([spdx2, spdx3], { error: "expected an SPDX 2.x or SPDX 3 JSON document" }),
  [PREDICATE_TYPES.cyclonedx]: cyclonedx,
  [PREDICATE_TYPES.slsaProvenanceV1]: slsaV1,
};

/** Why a predicate was refused, in words a pipeline author can act on. */
export type PredicateProblem =
  | { kind: "unknown_type"; message: string }
  | { kind: "invalid"; message: string }
  | { kind: "too_large"; message: string };

/** Checks a predicate against its type's schema and the size limit (of its canonical JSON). */
export function checkPredicate(
  predicateType: string,
  predicate: unknown,
  maxBytes: number,
): PredicateProblem | undefined {
  const schema = SCHEMAS[predicateType];
  if (!schema) {
    return {
      kind: "unknown_type",
      message: `unknown predicateType "${predicateType}"; allowed: ${Object.values(PREDICATE_TYPES).join(", ")}`,
    };
  }
  const size = Buffer.byteLength(JSON.stringify(predicate) ?? "");
  if (size > maxBytes) {
    return {
      kind: "too_large",
      message: `the ${predicateType} predicate is ${size} bytes; the limit is ${maxBytes}`,
    };
  }
  const parsed = schema.safeParse(predicate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    return {
      kind: "invalid",
      message: `the ${predicateType} predicate is invalid${where}: ${issue?.message ?? "bad shape"}`,
    };
  }
  return undefined;
}
