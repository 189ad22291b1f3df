import { describe, expect, it } from "vitest";
import { compileAuthorities } from "../../src/verify/authorities.ts";
import { createImmutableCache } from "../../src/verify/caching-fetcher.ts";
import { provenanceFacts } from "../../src/verify/provenance.ts";
import { sbomFacts } from "../../src/verify/sbom.ts";
import { loadTrustRoots } from "../../src/verify/trust-root.ts";

describe("authorities", () => {
  it("anchors subject patterns", () => {
    const a = compileAuthorities(
      [
        {
          name: "r",
          keyless: { issuer: "i", subjectRegex: "https://github\\.com/acme/web/.+@refs/heads/main" },
        },
      ],
      undefined,
    ).get("r");
    if (a?.kind !== "keyless") throw new Error("expected keyless");
    expect(a.matchesSubject("https://github.com/acme/web/.github/workflows/r.yml@refs/heads/main")).toBe(
      true,
    );
    expect(a.matchesSubject("https://github.com/acme/web/.github/workflows/r.yml@refs/heads/main-evil")).toBe(
      false,
    );
    expect(a.matchesSubject("x https://github.com/acme/web/a@refs/heads/main")).toBe(false);
  });
});

describe("provenance facts", () => {
  it("reads SLSA v0.2 and v1", () => {
    expect(
      provenanceFacts("v0.2", {
        builder: { id: "b" },
        invocation: { configSource: { uri: "git+https://github.com/acme/web.git@refs/heads/main" } },
      }),
    ).toEqual({
      builderId: "b",
      sourceRepository: "https://github.com/acme/web",
      ref: "refs/heads/main",
    });
    expect(
      provenanceFacts("v1", {
        buildDefinition: {
          externalParameters: {
            workflow: { repository: "https://github.com/acme/web", ref: "refs/tags/v1" },
          },
        },
        runDetails: { builder: { id: "b1" } },
      }),
    ).toEqual({
      builderId: "b1",
      sourceRepository: "https://github.com/acme/web",
      ref: "refs/tags/v1",
    });
    expect(() => provenanceFacts("v1", { builder: { id: "b" } })).toThrow();
  });
});

describe("sbom facts", () => {
  it("recognises SPDX 2, SPDX 3 and CycloneDX, and nothing else", () => {
    expect(
      sbomFacts({ spdxVersion: "SPDX-2.3", creationInfo: { created: "2025-01-01T00:00:00Z" } })?.format,
    ).toBe("spdx-2");
    expect(
      sbomFacts({
        "@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
        "@graph": [{ type: "CreationInfo", created: "2025-01-01T00:00:00Z" }],
      })?.created,
    ).toEqual(new Date("2025-01-01T00:00:00Z"));
    expect(sbomFacts({ bomFormat: "CycloneDX", specVersion: "1.5" })?.format).toBe("cyclonedx");
    expect(sbomFacts({ builder: { id: "x" } })).toBeUndefined();
  });
});

describe("trust roots", () => {
  it("pins the public-good root by default and reports a missing file instead of throwing", () => {
    expect(loadTrustRoots([], undefined).roots.map((r) => r.name)).toEqual(["public-good"]);
    const missing = loadTrustRoots(["/nonexistent/root.json"], undefined);
    expect(missing.roots).toEqual([]);
    expect(missing.problem).toContain("ENOENT");
  });
});

describe("the immutable object cache", () => {
  it("splits the budget (blobs 3/4, manifests 1/4) and keeps no object over a quarter of its share", () => {
    const cache = createImmutableCache({ maxBytes: 64 });
    cache.blobs.set("small", new Uint8Array(12));
    cache.blobs.set("big", new Uint8Array(13));
    expect([cache.blobs.get("small")?.length, cache.blobs.get("big")]).toEqual([12, undefined]);
    for (let i = 0; i < 5; i++) cache.blobs.set(`b${i}`, new Uint8Array(12));
    expect(cache.blobs.totalSize).toBeLessThanOrEqual(48);
  });
});
