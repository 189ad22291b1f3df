import { z } from "zod";

const spdx2 = z.object({
  spdxVersion: z.string().regex(/^SPDX-2\.\d+$/),
  creationInfo: z.object({ created: z.string() }).optional(),
});
const spdx3 = z.object({
  "@context": z.union([z.string(), z.array(z.unknown())]),
  "@graph": z.array(z.record(z.string(), z.unknown())),
});
const cyclonedx = z.object({
  bomFormat: z.literal("CycloneDX"),
  specVersion: z.string(),
  metadata: z.object({ timestamp: z.string().optional() }).optional(),
});

/** An SBOM predicate, recognised by its shape, with its creation time when it states one. */
export interface SbomFacts {
  format: "spdx-2" | "spdx-3" | "cyclonedx";
  created?: Date;
}

function date(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Reads an SBOM predicate (SPDX 2.x, SPDX 3 JSON-LD, CycloneDX JSON); undefined when it is none of them. */
export function sbomFacts(predicate: unknown): SbomFacts | undefined {
  const s2 = spdx2.safeParse(predicate);
  if (s2.success) return { format: "spdx-2", ...optionalDate(s2.data.creationInfo?.created) };
  const cdx = cyclonedx.safeParse(predicate);
  if (cdx.success) return { format: "cyclonedx", ...optionalDate(cdx.data.metadata?.timestamp) };
  const s3 = spdx3.safeParse(predicate);
  if (s3.success && JSON.stringify(s3.data["@context"]).includes("spdx.org/rdf/3")) {
    const info = s3.data["@graph"].find((n) => n.type === "CreationInfo");
    return {
      format: "spdx-3",
      ...optionalDate(typeof info?.created === "string" ? info.created : undefined),
    };
  }
  return undefined;
}

function optionalDate(text: string | undefined): { created?: Date } {
  const d = date(text);
  return d ? { created: d } : {};
}
