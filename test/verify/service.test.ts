import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FerryError } from "../../src/common/errors.ts";
import { sha256 } from "../../src/registry/digest.ts";
import type { Descriptor } from "../../src/registry/manifest.ts";
import { parseManifest } from "../../src/registry/manifest.ts";
import { compileAuthorities } from "../../src/verify/authorities.ts";
import { compilePolicy } from "../../src/verify/policy.ts";
import type { ArtifactFetcher, ManifestObject } from "../../src/verify/ports.ts";
import { VerificationService } from "../../src/verify/service.ts";
import { buildTrustContext } from "../../src/verify/trust-context.ts";

/** An in-memory registry holding one image and its cosign `.sig` tag; counts requests. */
function fakeRegistry(opts: {
  signWith: ReturnType<typeof generateKeyPairSync>["privateKey"];
  hang?: boolean;
}) {
  const image = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256("{}"), size: 2 },
      layers: [],
    }),
  );
  const digest = sha256(image);
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": "r/app" },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  const layer: Descriptor = {
    mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
    digest: sha256(payload),
    size: payload.length,
    annotations: {
      "dev.cosignproject.cosign/signature": sign("sha256", payload, opts.signWith).toString("base64"),
    },
  };
  const sig = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256("{}"), size: 2 },
      layers: [layer],
    }),
  );
  const object = (bytes: Uint8Array): ManifestObject => ({
    digest: sha256(bytes),
    bytes,
    manifest: parseManifest(bytes, undefined, "fake"),
  });
  const requests: string[] = [];
  const wait = () => (opts.hang ? new Promise<never>(() => {}) : Promise.resolve());
  const fetcher = {
    location: "fake/app",
    async manifest(d: string) {
      requests.push(`manifest ${d}`);
      await wait();
      if (d !== digest) throw new FerryError("not_found", "no such manifest");
      return object(image);
    },
    async blob(d: Descriptor) {
      requests.push(`blob ${d.digest}`);
      return payload;
    },
    async referrers() {
      requests.push("referrers");
      return [];
    },
    async legacyTag(tag: string) {
      requests.push(`tag ${tag}`);
      return tag.endsWith(".sig") ? object(sig) : undefined;
    },
  } satisfies ArtifactFetcher;
  return { digest, fetcher, requests };
}

function serviceFor(
  fetcher: ArtifactFetcher,
  trusted: ReturnType<typeof generateKeyPairSync>["publicKey"],
  timeoutMs = 5_000,
) {
  const authorities = compileAuthorities([{ name: "ci", key: "ferry" }], trusted);
  const trust = buildTrustContext(authorities, { roots: [] });
  const policy = compilePolicy(
    "prod",
    { signature: { authorities: ["ci"], count: 1, multiArch: "index" } },
    authorities,
    [],
  );
  return new VerificationService({
    policies: new Map([["prod", policy]]),
    trust,
    fetcherFor: () => fetcher,
    timeoutMs,
    cacheTtlMs: 60_000,
    maxBlobBytes: 1 << 20,
  });
}

describe("VerificationService", () => {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" });

  it("allows a digest signed by the trusted key, and makes each request once", async () => {
    const { digest, fetcher, requests } = fakeRegistry({ signWith: key.privateKey });
    const report = await serviceFor(fetcher, key.publicKey).verify(`r.test/app@${digest}`, "prod");
    expect(report.allowed).toBe(true);
    expect(new Set(requests).size).toBe(requests.length);
  });

  it("denies a key it does not trust, naming the candidate", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: other.privateKey });
    const report = await serviceFor(fetcher, key.publicKey).verify(`r.test/app@${digest}`, "prod");
    expect(report.allowed).toBe(false);
    expect(report.checks[0]).toMatchObject({
      reason: "no_trusted_signature",
      details: { candidates: [{ reason: "untrusted_key" }] },
    });
  });

  it("answers a repeat from the decision cache", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: key.privateKey });
    const service = serviceFor(fetcher, key.publicKey);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(false);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(true);
  });

  it("denies on timeout", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: key.privateKey, hang: true });
    const report = await serviceFor(fetcher, key.publicKey, 50).verify(`r.test/app@${digest}`, "prod");
    expect(report).toMatchObject({ allowed: false, checks: [{ name: "discovery", reason: "timeout" }] });
  });

  it("refuses an unknown environment and a tag", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: key.privateKey });
    const service = serviceFor(fetcher, key.publicKey);
    await expect(service.verify(`r.test/app@${digest}`, "nope")).rejects.toMatchObject({ code: "not_found" });
    await expect(service.verify("r.test/app:latest", "prod")).rejects.toMatchObject({
      code: "tag_reference",
    });
  });
});
