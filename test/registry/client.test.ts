import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFerryError, isRetryable } from "../../src/common/errors.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { findLegacyAttachments } from "../../src/registry/cosign-tags.ts";
import { MediaType } from "../../src/registry/media-types.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { codeOf } from "../support/outcomes.ts";
import { type RegistryAuth, startRegistry, type TestRegistry } from "../support/registry.ts";
import { BUNDLE_PREDICATE_TYPE, pushSignedImage } from "../support/signed-image.ts";

const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };
const modes: RegistryAuth[] = ["none", "htpasswd", "token"];

/** The config entry a test registry needs (its token server listed as a realm). */
function settingsFor(reg: TestRegistry, password = reg.password) {
  return {
    url: reg.url,
    ...(reg.username ? { auth: { username: reg.username, password: password! } } : {}),
    ...(reg.tokenServer ? { tokenRealms: [reg.tokenServer.realm] } : {}),
  };
}

let work: string;
const registries = new Map<RegistryAuth, TestRegistry>();
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-registry-client-"));
  for (const reg of await Promise.all(modes.map((auth) => startRegistry({ auth }))))
    registries.set(reg.auth, reg);
});
afterAll(async () => {
  await Promise.all([...registries.values()].map((r) => r.stop()));
  await rm(work, { recursive: true, force: true });
});

describe.each(modes)("reading (auth: %s)", (auth) => {
  it("reads a multi-arch index, its manifests, blobs and tags, every object re-hashed", async () => {
    const reg = registries.get(auth)!;
    const image = await buildImageLayout(join(work, `multi-${auth}`), {
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64", variant: "v8" },
      ],
    });
    const single = await buildImageLayout(join(work, `single-${auth}`), { layers: 2 });
    const indexDigest = await pushImage(image.dir, reg, "read/multi:v1");
    const singleDigest = await pushImage(single.dir, reg, "read/single:v1");
    reg.tokenServer?.clearRequests();

    const client = new RegistryClient({ registries: [settingsFor(reg)], retry: FAST_RETRY });
    const repo = client.repository({ registry: reg.host, repository: "read/multi" });
    const index = await repo.fetchManifest(indexDigest);
    expect(index.descriptor).toMatchObject({ digest: indexDigest, mediaType: MediaType.ociIndex });
    expect(index.manifest.kind).toBe("index");
    if (index.manifest.kind !== "index") return;
    expect(index.manifest.value.manifests.map((m) => m.platform?.architecture)).toEqual(["amd64", "arm64"]);

    for (const [i, child] of index.manifest.value.manifests.entries()) {
      const m = await repo.fetchManifest(child.digest);
      expect(m.manifest.kind).toBe("image");
      if (m.manifest.kind !== "image") continue;
      expect(m.manifest.value.layers.map((l) => l.digest)).toEqual(image.manifests[i]!.layerDigests);
      const config = JSON.parse(new TextDecoder().decode(await repo.fetchBlob(m.manifest.value.config)));
      expect(config.architecture).toBe(child.platform?.architecture);
      expect(await repo.hasBlob(m.manifest.value.layers[0]!)).toBe(true);
    }
    // By tag: the digest comes from the bytes and must equal the one the registry announced.
    expect((await repo.fetchManifest("v1")).descriptor.digest).toBe(indexDigest);
    expect(await repo.hasManifest(indexDigest)).toBe(true);
    expect(await repo.listTags()).toEqual(["v1"]);

    const other = client.repository({ registry: reg.host, repository: "read/single" });
    const m = await other.fetchManifest(singleDigest);
    expect(m.manifest.kind === "image" && m.manifest.value.layers).toHaveLength(2);
    expect(await codeOf(other.fetchManifest(indexDigest))).toBe("not_found");
    expect(await other.findManifest("nope")).toBeUndefined();
    expect(await other.hasManifest(indexDigest)).toBe(false);

    if (auth === "token") {
      const ts = reg.tokenServer!;
      // One token per repository, reused until it expires; reads ask for pull and nothing more.
      expect(ts.requests.map((r) => r.scopes)).toEqual([
        ["repository:read/multi:pull"],
        ["repository:read/single:pull"],
      ]);
      expect(ts.requests.every((r) => r.authPresented && r.status === 200)).toBe(true);
    }
  });
});

describe.each(["htpasswd", "token"] as const)("wrong credentials (auth: %s)", (auth) => {
  it("are refused with upstream_denied, which is final", async () => {
    const reg = registries.get(auth)!;
    const client = new RegistryClient({
      registries: [settingsFor(reg, "wrong-password")],
      retry: FAST_RETRY,
    });
    const repo = client.repository({ registry: reg.host, repository: "read/multi" });
    const err = await repo.fetchManifest("v1").catch((e: unknown) => e);
    expect(isFerryError(err, "upstream_denied")).toBe(true);
    expect(isRetryable(err)).toBe(false);
  });
});

describe("the allow-list", () => {
  it("refuses an unlisted registry before any request", () => {
    const client = new RegistryClient({ registries: [settingsFor(registries.get("none")!)] });
    expect(() => client.repository({ registry: "registry.example.com", repository: "a" })).toThrow(
      expect.objectContaining({ code: "forbidden" }),
    );
  });

  it("sends no credentials to a token realm that is not listed", async () => {
    const reg = registries.get("token")!;
    reg.tokenServer!.clearRequests();
    const { tokenRealms: _, ...unlisted } = settingsFor(reg);
    const client = new RegistryClient({ registries: [unlisted] });
    const repo = client.repository({ registry: reg.host, repository: "read/multi" });
    expect(await codeOf(repo.fetchManifest("v1"))).toBe("forbidden");
    expect(reg.tokenServer!.requests).toEqual([]);
  });
});

describe("signatures and attestations through the fallback tags", () => {
  it("finds cosign's .sig/.att tags and the bundle referrer in the fallback index", async () => {
    const reg = registries.get("htpasswd")!;
    const signed = await pushSignedImage(reg, "signed/app", work);
    const client = new RegistryClient({ registries: [settingsFor(reg)], retry: FAST_RETRY });
    const repo = client.repository({ registry: reg.host, repository: "signed/app" });

    const legacy = await findLegacyAttachments(repo, signed.digest);
    expect(Object.keys(legacy).sort()).toEqual(["att", "sig"]);
    const sig = legacy.sig!;
    expect(sig.manifest.kind === "image" && sig.manifest.value.layers[0]?.mediaType).toBe(
      "application/vnd.dev.cosign.simplesigning.v1+json",
    );

    // distribution 2.8 has no referrers API: the list comes from the sha256-<hex> index.
    const referrers = await repo.listReferrers(signed.digest);
    expect(referrers).toHaveLength(1);
    const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json";
    const typed = await repo.listReferrers(signed.digest, { artifactType: bundleType });
    expect(typed.map((d) => [d.digest, d.artifactType])).toEqual([[referrers[0]!.digest, bundleType]]);
    expect(await repo.listReferrers(signed.digest, { artifactType: "application/x-other" })).toEqual([]);

    const referrer = await repo.fetchManifest(referrers[0]!.digest);
    expect(referrer.manifest.value.subject?.digest).toBe(signed.digest);
    expect(referrer.manifest.value.annotations?.["dev.sigstore.bundle.predicateType"]).toBe(
      BUNDLE_PREDICATE_TYPE,
    );
    const layer = referrer.manifest.kind === "image" ? referrer.manifest.value.layers[0]! : undefined;
    const bundle = JSON.parse(
      new TextDecoder().decode(await repo.fetchBlob(layer!, { maxBytes: 64 * 1024 })),
    );
    expect(bundle.mediaType).toMatch(/^application\/vnd\.dev\.sigstore\.bundle/);
    // Over the size cap, the blob is refused before it is read.
    expect(await codeOf(repo.fetchBlob(layer!, { maxBytes: 16 }))).toBe("payload_too_large");
  });
});
