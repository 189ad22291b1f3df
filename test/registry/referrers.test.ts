import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyedMutex } from "../../src/common/locks.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { digestTag, sha256 } from "../../src/registry/digest.ts";
import type { Descriptor } from "../../src/registry/manifest.ts";
import { MediaType } from "../../src/registry/media-types.ts";
import type { ArtifactWriter } from "../../src/registry/ports.ts";
import { putReferrer } from "../../src/registry/referrers.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

const ARTIFACT_TYPE = "application/vnd.ferry.test.note+json";
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

let work: string;
let reg: TestRegistry;

/** Pushes the blobs of a small referrer artifact about `subject`; returns its manifest bytes. */
async function referrerManifest(
  repo: ArtifactWriter,
  subject: Descriptor,
  note: string,
): Promise<Uint8Array> {
  const config = new TextEncoder().encode("{}");
  const layer = encode({ note });
  const configDescriptor = { mediaType: MediaType.ociEmpty, digest: sha256(config), size: config.byteLength };
  const layerDescriptor = { mediaType: ARTIFACT_TYPE, digest: sha256(layer), size: layer.byteLength };
  await repo.putBlob(configDescriptor, config);
  await repo.putBlob(layerDescriptor, layer);
  return encode({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: ARTIFACT_TYPE,
    config: configDescriptor,
    layers: [layerDescriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { "ferry.test/note": note },
  });
}

async function pushedImage(repo: string): Promise<Descriptor> {
  const image = await buildImageLayout(join(work, repo.replaceAll("/", "-")));
  const digest = await pushImage(image.dir, reg, `${repo}:v1`);
  return { mediaType: image.mediaType, digest, size: image.size };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-registry-referrers-"));
  reg = await startRegistry({ auth: "none" });
});
afterAll(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("writing referrers on a registry without the referrers API", () => {
  it("keeps every entry when writers in one process race", async () => {
    const subject = await pushedImage("ref/many");
    const repo = new RegistryClient({ registries: [{ url: reg.url }] }).repository({
      registry: reg.host,
      repository: "ref/many",
    });
    const notes = ["a", "b", "c", "d", "e", "f"];
    const manifests = await Promise.all(notes.map((n) => referrerManifest(repo, subject, n)));
    const digests = await Promise.all(manifests.map((m) => putReferrer(repo, m, MediaType.ociManifest)));

    const listed = await repo.listReferrers(subject.digest);
    expect(listed.map((d) => d.digest).sort()).toEqual([...digests].sort());
    // Entries describe the manifest as the spec says: its own artifactType and annotations.
    expect(listed.every((d) => d.artifactType === ARTIFACT_TYPE && d.annotations?.["ferry.test/note"])).toBe(
      true,
    );
    expect(await repo.listReferrers(subject.digest, { artifactType: ARTIFACT_TYPE })).toHaveLength(
      notes.length,
    );
    // Writing one again changes nothing.
    await putReferrer(repo, manifests[0]!, MediaType.ociManifest);
    expect(await repo.listReferrers(subject.digest)).toHaveLength(notes.length);
  });

  it("repairs a lost update when another process's write lands between its read and its write", async () => {
    const subject = await pushedImage("ref/race");
    // Two writers that share nothing (two clients, two locks, two proxies), ordered by the proxies:
    //   A reads the index, B writes its entry, A then overwrites it (distribution 2.8 ignores If-Match),
    //   and only then does B re-read — and must notice its entry is gone and write it again.
    const [pa, pb]: [FaultProxy, FaultProxy] = await Promise.all([
      startFaultProxy(reg.url),
      startFaultProxy(reg.url),
    ]);
    try {
      const tagPath = `/v2/ref/race/manifests/${digestTag(subject.digest)}`;
      const signal = () => {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => {
          resolve = r;
        });
        return { promise, resolve };
      };
      const aRead = signal();
      const bWrote = signal();
      const aWrote = signal();
      pa.addFault({
        match: (r) => r.method === "GET" && r.path === tagPath,
        action: { kind: "hold", until: Promise.resolve(), onAnswered: aRead.resolve },
        times: 1,
      });
      pa.addFault({
        match: (r) => r.method === "PUT" && r.path === tagPath,
        action: { kind: "hold", until: bWrote.promise, onAnswered: aWrote.resolve },
        times: 1,
      });
      pb.addFault({
        match: (r) => r.method === "PUT" && r.path === tagPath,
        action: { kind: "hold", until: aRead.promise, onAnswered: bWrote.resolve },
        times: 1,
      });
      pb.addFault({
        match: (r) => r.method === "GET" && r.path === tagPath,
        action: { kind: "hold", until: Promise.resolve() },
        times: 1,
      });
      pb.addFault({
        match: (r) => r.method === "GET" && r.path === tagPath,
        action: { kind: "hold", until: aWrote.promise },
        times: 1,
      });

      const writer = (proxy: FaultProxy) =>
        new RegistryClient({ registries: [{ url: proxy.url }] }).repository({
          registry: proxy.host,
          repository: "ref/race",
        });
      const [ra, rb] = [writer(pa), writer(pb)];
      const [ma, mb] = await Promise.all([
        referrerManifest(ra, subject, "from-a"),
        referrerManifest(rb, subject, "from-b"),
      ]);
      const options = () => ({ lock: new KeyedMutex(), settleMs: () => 0 });
      const [da, db] = await Promise.all([
        putReferrer(ra, ma, MediaType.ociManifest, options()),
        putReferrer(rb, mb, MediaType.ociManifest, options()),
      ]);

      const listed = (await ra.listReferrers(subject.digest)).map((d) => d.digest);
      expect(listed.sort()).toEqual([da, db].sort());
      // B's first write was lost and redone: it wrote the index twice.
      expect(pb.count((r) => r.method === "PUT" && r.path === tagPath)).toBe(2);
    } finally {
      await Promise.all([pa.stop(), pb.stop()]);
    }
  });
});
