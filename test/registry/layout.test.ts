import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";
import { copyArtifact } from "../../src/registry/copy.ts";
import { legacyTag } from "../../src/registry/cosign-tags.ts";
import { digestTag } from "../../src/registry/digest.ts";
import { OciLayout } from "../../src/registry/layout.ts";
import { MediaType } from "../../src/registry/media-types.ts";
import { verify, verifyAttestation } from "../support/cosign.ts";
import { buildImageLayout } from "../support/images.ts";
import { codeOf } from "../support/outcomes.ts";
import { run } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import {
  BUNDLE_PREDICATE_TYPE,
  LEGACY_PREDICATE_TYPE,
  pushSignedImage,
  type SignedImage,
} from "../support/signed-image.ts";

let work: string;
let a: TestRegistry;
let b: TestRegistry;
let client: RegistryClient;
let signed: SignedImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-registry-layout-"));
  [a, b] = await Promise.all([startRegistry({ auth: "none" }), startRegistry({ auth: "none" })]);
  client = new RegistryClient({ registries: [{ url: a.url }, { url: b.url }] });
  signed = await pushSignedImage(a, "air/app", work, {
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ],
  });
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("OCI image layout", () => {
  it("carries a signed image across an air gap: registry → layout → registry, still verifying", async () => {
    const dir = join(work, "carried");
    const layout = await OciLayout.open(dir, { create: true });
    const out = await copyArtifact(
      client.repository({ registry: a.host, repository: "air/app" }),
      signed.digest,
      layout,
    );
    expect(out.attachments.tags).toHaveLength(2);
    expect(out.attachments.referrers).toHaveLength(1);

    // The layout as the image-layout spec has it: the artifact is a top-level entry; the cosign
    // tags and the referrers fallback index are ref names.
    expect(JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"))).toEqual({
      imageLayoutVersion: "1.0.0",
    });
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    expect(index.manifests.find((d: { digest: string }) => d.digest === signed.digest)).toMatchObject({
      mediaType: MediaType.ociIndex,
    });
    expect((await layout.listTags()).sort()).toEqual(
      [digestTag(signed.digest), legacyTag(signed.digest, "att"), legacyTag(signed.digest, "sig")].sort(),
    );
    expect(await layout.listReferrers(signed.digest)).toHaveLength(1);

    // skopeo reads what Ferry wrote.
    const inspected = await run("skopeo", [
      "inspect",
      "--raw",
      `oci:${dir}:${legacyTag(signed.digest, "sig")}`,
    ]);
    expect(inspected.code, inspected.stderr).toBe(0);

    const reopened = await OciLayout.open(dir);
    await copyArtifact(
      reopened,
      signed.digest,
      client.repository({ registry: b.host, repository: "air/app" }),
    );
    const ref = `${b.host}/air/app@${signed.digest}`;
    expect((await verify(ref, signed.keys.publicKeyPath)).code).toBe(0);
    expect((await verifyAttestation(ref, signed.keys.publicKeyPath, LEGACY_PREDICATE_TYPE)).code).toBe(0);
    const bundle = await verifyAttestation(ref, signed.keys.publicKeyPath, BUNDLE_PREDICATE_TYPE, {
      newBundleFormat: true,
    });
    expect(bundle.code, bundle.stderr).toBe(0);
  });

  it("reads layouts other tools wrote", async () => {
    // The test harness's builder (which skopeo pushes from)…
    const built = await buildImageLayout(join(work, "built"), {
      platforms: [{ os: "linux", architecture: "amd64" }],
      refName: "v1",
    });
    const fromBuilder = await OciLayout.open(built.dir);
    expect((await fromBuilder.fetchManifest("v1")).descriptor.digest).toBe(built.digest);
    // …and skopeo's own oci: transport.
    const skopeoDir = join(work, "by-skopeo");
    const copied = await run("skopeo", [
      "copy",
      "--insecure-policy",
      "--src-tls-verify=false",
      `docker://${a.host}/air/app@${signed.image.manifests[0]!.digest}`,
      `oci:${skopeoDir}:latest`,
    ]);
    expect(copied.code, copied.stderr).toBe(0);
    const bySkopeo = await OciLayout.open(skopeoDir);
    const fetched = await bySkopeo.fetchManifest("latest");
    expect(fetched.manifest.kind).toBe("image");
    if (fetched.manifest.kind !== "image") return;
    const layer = fetched.manifest.value.layers[0]!;
    expect((await bySkopeo.fetchBlob(layer)).byteLength).toBe(layer.size);
  });

  it("refuses a blob file whose bytes do not match its name", async () => {
    const dir = join(work, "tampered");
    const built = await buildImageLayout(dir);
    const layout = await OciLayout.open(dir);
    const manifest = await layout.fetchManifest(built.digest);
    if (manifest.manifest.kind !== "image") throw new Error("expected an image manifest");
    const layer = manifest.manifest.value.layers[0]!;
    const file = join(dir, "blobs", "sha256", layer.digest.slice("sha256:".length));
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    await writeFile(file, bytes);
    expect(await codeOf(layout.fetchBlob(layer))).toBe("digest_mismatch");
    const manifestFile = join(dir, "blobs", "sha256", built.digest.slice("sha256:".length));
    await writeFile(manifestFile, `${await readFile(manifestFile, "utf8")} `);
    expect(await codeOf(layout.fetchManifest(built.digest))).toBe("digest_mismatch");
  });

  it("is not found where there is none, unless asked to create one", async () => {
    expect(await codeOf(OciLayout.open(join(work, "nothing-here")))).toBe("not_found");
  });
});
