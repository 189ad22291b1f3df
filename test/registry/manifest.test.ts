import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256 } from "../../src/registry/digest.ts";
import { verifiedManifest } from "../../src/registry/fetched.ts";
import { children, parseManifest, referrerDescriptor } from "../../src/registry/manifest.ts";
import { MediaType } from "../../src/registry/media-types.ts";
import { codeOf } from "../support/outcomes.ts";

// Bytes captured from docker-registry 2.8 after cosign 2.5 and skopeo 1.9 pushed them (the
// `.manifest` extension keeps formatters away: a manifest is its exact bytes).
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`fixtures/${name}`, import.meta.url)));

describe("parseManifest", () => {
  it("reads cosign's legacy signature image", () => {
    const m = parseManifest(fixture("cosign-sig-manifest.manifest"), MediaType.ociManifest, "sig");
    expect(m.kind).toBe("image");
    if (m.kind !== "image") return;
    expect(m.value.layers[0]?.mediaType).toBe("application/vnd.dev.cosign.simplesigning.v1+json");
    expect(m.value.layers[0]?.annotations?.["dev.cosignproject.cosign/signature"]).toBeTruthy();
  });

  it("reads cosign's fallback index and its bundle referrer, and names the referrer by its real type", () => {
    const index = parseManifest(fixture("cosign-fallback-index.manifest"), MediaType.ociIndex, "index");
    expect(index.kind).toBe("index");
    const [entry] = children(index);
    // cosign labels the entry with the empty type whatever the artifact is…
    expect(entry?.artifactType).toBe(MediaType.ociEmpty);
    const bytes = fixture("cosign-bundle-referrer.manifest");
    expect(sha256(bytes)).toBe(entry?.digest);
    const referrer = parseManifest(bytes, MediaType.ociManifest, "referrer");
    expect(referrer.value.subject?.mediaType).toBe(MediaType.ociManifest);
    // …while the spec's descriptor carries the manifest's own artifactType and annotations.
    const descriptor = referrerDescriptor(referrer, entry!.digest, bytes.byteLength);
    expect(descriptor.artifactType).toBe("application/vnd.dev.sigstore.bundle.v0.3+json");
    expect(descriptor.annotations?.["dev.sigstore.bundle.predicateType"]).toBe("https://ferry.test/sbom/v1");
  });

  it("reads Docker schema 2 manifest lists and manifests", () => {
    const list = parseManifest(
      fixture("docker-manifest-list.manifest"),
      MediaType.dockerManifestList,
      "list",
    );
    expect(list.kind).toBe("index");
    expect(children(list).map((d) => d.platform?.architecture)).toEqual(["amd64", "arm64"]);
    const image = parseManifest(fixture("docker-manifest-v2.manifest"), MediaType.dockerManifest, "image");
    expect(image.kind).toBe("image");
    expect(children(image)).toHaveLength(2);
  });

  it("infers the kind of an OCI manifest without a mediaType field", () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    expect(parseManifest(bytes, undefined, "x")).toMatchObject({
      kind: "index",
      mediaType: MediaType.ociIndex,
    });
  });

  it("refuses schema 1, a type mismatch, unknown types and malformed manifests", () => {
    const schema1 = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 1, name: "a", tag: "v1", fsLayers: [], history: [] }),
    );
    expect(codeOf(() => parseManifest(schema1, MediaType.dockerSchema1Signed, "s1"))).toBe(
      "unsupported_media_type",
    );
    expect(
      codeOf(() => parseManifest(fixture("cosign-sig-manifest.manifest"), MediaType.ociIndex, "x")),
    ).toBe("upstream_invalid");
    const unknown = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: "application/x-thing" }),
    );
    expect(codeOf(() => parseManifest(unknown, undefined, "x"))).toBe("unsupported_media_type");
    const broken = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { digest: "sha256:nope" },
        layers: [],
      }),
    );
    expect(codeOf(() => parseManifest(broken, undefined, "x"))).toBe("upstream_invalid");
    expect(codeOf(() => parseManifest(new TextEncoder().encode("{"), undefined, "x"))).toBe(
      "upstream_invalid",
    );
  });
});

describe("verifiedManifest", () => {
  const bytes = fixture("cosign-sig-manifest.manifest");
  const digest = sha256(bytes);

  it("accepts bytes that hash to the digest asked for", () => {
    expect(verifiedManifest(bytes, MediaType.ociManifest, digest, null, "x").descriptor).toEqual({
      mediaType: MediaType.ociManifest,
      digest,
      size: bytes.byteLength,
    });
  });

  it("refuses bytes that do not hash to the digest asked for, or to the one announced for a tag", () => {
    const tampered = new Uint8Array(bytes);
    tampered[10] = tampered[10]! ^ 1;
    expect(codeOf(() => verifiedManifest(tampered, MediaType.ociManifest, digest, null, "x"))).toBe(
      "digest_mismatch",
    );
    expect(codeOf(() => verifiedManifest(tampered, MediaType.ociManifest, "v1", digest, "x"))).toBe(
      "digest_mismatch",
    );
  });
});
