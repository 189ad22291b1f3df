import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";
import { type CopyEvent, copyArtifact } from "../../src/registry/copy.ts";
import { generateKeyPair, type RegistryAuth, sign, verify, verifyAttestation } from "../support/cosign.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import {
  BUNDLE_PREDICATE_TYPE,
  LEGACY_PREDICATE_TYPE,
  pushSignedImage,
  type SignedImage,
} from "../support/signed-image.ts";

let work: string;
let a: TestRegistry; // token auth
let b: TestRegistry; // htpasswd
let pa: FaultProxy;
let pb: FaultProxy;
let client: RegistryClient;
let signed: SignedImage;

const authOf = (reg: TestRegistry): RegistryAuth => ({ username: reg.username!, password: reg.password! });

/** cosign verify, verify-attestation (legacy) and verify-attestation (bundle) against `ref`. */
async function expectVerifies(ref: string, reg: TestRegistry, publicKeyPath = signed.keys.publicKeyPath) {
  const registryAuth = authOf(reg);
  const sig = await verify(ref, publicKeyPath, { registryAuth });
  expect(sig.code, sig.stderr).toBe(0);
  const att = await verifyAttestation(ref, publicKeyPath, LEGACY_PREDICATE_TYPE, { registryAuth });
  expect(att.code, att.stderr).toBe(0);
  const bundle = await verifyAttestation(ref, publicKeyPath, BUNDLE_PREDICATE_TYPE, {
    registryAuth,
    newBundleFormat: true,
  });
  expect(bundle.code, bundle.stderr).toBe(0);
}

const blobCount = (image: SignedImage) =>
  new Set(image.image.manifests.flatMap((m) => [m.configDigest, ...m.layerDigests])).size;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-registry-copy-"));
  [a, b] = await Promise.all([startRegistry({ auth: "token" }), startRegistry({ auth: "htpasswd" })]);
  [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
  client = new RegistryClient({
    registries: [
      { url: pa.url, auth: authOf(a), tokenRealms: [a.tokenServer!.realm] },
      { url: pb.url, auth: authOf(b) },
    ],
  });
  signed = await pushSignedImage(a, "src/app", work, {
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ],
    layers: 2,
    layerSize: 512 * 1024,
  });
});
afterAll(async () => {
  await Promise.all([pa?.stop(), pb?.stop()]);
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("copy within one registry", () => {
  it("mounts every blob (no upload) and the copy verifies with cosign", async () => {
    pa.clearRequests();
    a.tokenServer!.clearRequests();
    const source = client.repository({ registry: pa.host, repository: "src/app" });
    const destination = client.repository({ registry: pa.host, repository: "prod/app" });
    const result = await copyArtifact(source, signed.digest, destination);

    expect(result.digest).toBe(signed.digest);
    expect(result.blobs.uploaded).toBe(0);
    expect(result.blobs.mounted).toBeGreaterThan(blobCount(signed));
    const uploads = pa.requests.filter((r) => r.path.startsWith("/v2/prod/app/blobs/uploads/"));
    expect(uploads.length).toBeGreaterThan(0);
    expect(
      uploads.every(
        (r) => r.method === "POST" && r.path.includes("mount=") && r.path.includes("from=src%2Fapp"),
      ),
    ).toBe(true);
    expect(pa.count((r) => r.method === "GET" && r.path.startsWith("/v2/src/app/blobs/"))).toBe(0);
    // The mount token asks for push on the destination and pull on the source, in one token.
    expect(
      a.tokenServer!.requests.some(
        (r) =>
          r.scopes.includes("repository:prod/app:pull,push") && r.scopes.includes("repository:src/app:pull"),
      ),
    ).toBe(true);
    expect(
      a.tokenServer!.requests.every((r) =>
        r.scopes.every((s) => !s.startsWith("repository:src/app:") || s === "repository:src/app:pull"),
      ),
    ).toBe(true);

    await expectVerifies(`${a.host}/prod/app@${signed.digest}`, a);
  });
});

describe("copy between registries", () => {
  it("streams each blob once, reports progress, and the copy verifies with cosign", async () => {
    pa.clearRequests();
    pb.clearRequests();
    const events: CopyEvent[] = [];
    const source = client.repository({ registry: pa.host, repository: "src/app" });
    const destination = client.repository({ registry: pb.host, repository: "prod/app" });
    const result = await copyArtifact(source, signed.digest, destination, {
      onProgress: (e) => events.push(e),
      parallelism: 3,
    });

    expect(result.digest).toBe(signed.digest);
    expect(result.blobs.mounted).toBe(0);
    expect(result.blobs.uploaded).toBeGreaterThan(blobCount(signed));
    // Every blob is read from the source once, and written once.
    const gets = pa.requests.filter((r) => r.method === "GET" && r.path.includes("/blobs/sha256:"));
    expect(new Set(gets.map((r) => r.path)).size).toBe(gets.length);
    expect(pb.count((r) => r.method === "PUT" && r.path.includes("/blobs/uploads/"))).toBe(
      result.blobs.uploaded,
    );
    expect(pb.count((r) => r.method === "PATCH")).toBe(0);

    expect(events.filter((e) => e.type === "blob" && e.action === "uploaded")).toHaveLength(
      result.blobs.uploaded,
    );
    expect(events.some((e) => e.type === "bytes" && e.transferred === e.size && e.size > 512 * 1024)).toBe(
      true,
    );
    expect(
      events
        .filter((e) => e.type === "attachment")
        .map((e) => e.type === "attachment" && e.kind)
        .sort(),
    ).toEqual(["att", "referrer", "sig"]);
    // Attachments are copied beside the image (not after it), so the order of the last events is a
    // race; what holds is that the image's own manifest was pushed once, and every attachment was
    // reported before the copy answered.
    expect(events.filter((e) => e.type === "manifest" && e.digest === signed.digest)).toEqual([
      expect.objectContaining({ action: "pushed" }),
    ]);

    await expectVerifies(`${b.host}/prod/app@${signed.digest}`, b);
  });

  it("writes nothing the second time: manifest, referrers and fallback index entries are found present", async () => {
    pb.clearRequests();
    const events: CopyEvent[] = [];
    const result = await copyArtifact(
      client.repository({ registry: pa.host, repository: "src/app" }),
      signed.digest,
      client.repository({ registry: pb.host, repository: "prod/app" }),
      { onProgress: (e) => events.push(e) },
    );
    expect(result.manifests).toEqual({ pushed: 0, present: 1 });
    expect(result.blobs).toEqual({ mounted: 0, present: 0, uploaded: 0, bytesUploaded: 0 });
    expect(result.attachments.present).toBe(3);
    expect(result.wrote).toBe(false);
    expect(
      events.filter((e) => e.type === "attachment").map((e) => e.type === "attachment" && e.action),
    ).toEqual(["present", "present", "present"]);
    const writes = pb.requests.filter((r) => !["GET", "HEAD"].includes(r.method));
    expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it("--tag: tags the destination with the same manifest bytes, once", async () => {
    const source = client.repository({ registry: pa.host, repository: "src/app" });
    const destination = client.repository({ registry: pb.host, repository: "prod/app" });
    pb.clearRequests();
    const tagged = await copyArtifact(source, signed.digest, destination, { tag: "v1.2.3" });
    expect(tagged.tag).toEqual({ name: "v1.2.3", action: "pushed" });
    expect(pb.requests.filter((r) => r.method === "PUT").map((r) => r.path)).toEqual([
      "/v2/prod/app/manifests/v1.2.3",
    ]);
    const byTag = await destination.findManifest("v1.2.3");
    expect(byTag?.descriptor.digest).toBe(signed.digest);
    pb.clearRequests();
    const again = await copyArtifact(source, signed.digest, destination, { tag: "v1.2.3" });
    expect(again.tag).toEqual({ name: "v1.2.3", action: "present" });
    expect(again.wrote).toBe(false);
    expect(pb.requests.filter((r) => !["GET", "HEAD"].includes(r.method))).toEqual([]);
  });

  it("--tag: refuses a name that is not an OCI tag before any request", async () => {
    pb.clearRequests();
    pa.clearRequests();
    for (const tag of ["", "-v1", "v1/latest", "sha256:abc", "x".repeat(129)]) {
      await expect(
        copyArtifact(
          client.repository({ registry: pa.host, repository: "src/app" }),
          signed.digest,
          client.repository({ registry: pb.host, repository: "prod/app" }),
          { tag },
        ),
      ).rejects.toMatchObject({ code: "bad_request", message: expect.stringMatching(/not a valid OCI tag/) });
    }
    expect(pa.requests.length + pb.requests.length).toBe(0);
  });

  it("keeps the destination's own signatures beside the source's", async () => {
    const [second, third] = await Promise.all([
      generateKeyPair(join(work, "keys-second")),
      generateKeyPair(join(work, "keys-third")),
    ]);
    // The source gains a signature, and the destination has one of its own the source lacks.
    const atA = await sign(`${a.host}/src/app@${signed.digest}`, second.privateKeyPath, {
      registryAuth: authOf(a),
    });
    expect(atA.code, atA.stderr).toBe(0);
    const atB = await sign(`${b.host}/prod/app@${signed.digest}`, third.privateKeyPath, {
      registryAuth: authOf(b),
    });
    expect(atB.code, atB.stderr).toBe(0);

    await copyArtifact(
      client.repository({ registry: pa.host, repository: "src/app" }),
      signed.digest,
      client.repository({ registry: pb.host, repository: "prod/app" }),
    );
    const ref = `${b.host}/prod/app@${signed.digest}`;
    for (const [name, keys] of Object.entries({ first: signed.keys, second, third })) {
      const res = await verify(ref, keys.publicKeyPath, { registryAuth: authOf(b) });
      expect(res.code, `${name}: ${res.stderr}`).toBe(0);
    }
  });
});
