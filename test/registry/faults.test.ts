import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/common/clock.ts";
import { isFerryError, isRetryable } from "../../src/common/errors.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { copyArtifact } from "../../src/registry/copy.ts";
import type { Descriptor } from "../../src/registry/manifest.ts";
import {
  type FaultProxy,
  type StubServer,
  startFaultProxy,
  startStubServer,
} from "../support/fault-proxy.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { codeOf } from "../support/outcomes.ts";
import { registryFetch, startRegistry, type TestRegistry } from "../support/registry.ts";

let work: string;
let reg: TestRegistry;
let proxy: FaultProxy;
let storage: StubServer;
let unlisted: StubServer;
let digest: string;
let layer: Descriptor;
let layerBytes: Buffer;

const isManifest = (path: string) => path.startsWith("/v2/fault/app/manifests/");
const isBlob = (path: string) => path.startsWith(`/v2/fault/app/blobs/sha256:`);

/**
 * A repository through the proxy, already authenticated (its first 401 is behind it), with the
 * proxy's request log cleared: faults added after this meet authenticated requests only.
 */
async function warmRepo(timeoutMs = 5_000) {
  const repo = client(timeoutMs).repository({ registry: proxy.host, repository: "fault/app" });
  expect(await repo.hasManifest(digest)).toBe(true);
  proxy.clearRequests();
  return repo;
}

/** A client whose registries are the proxy (with the storage stub) and the registry itself. */
function client(timeoutMs = 5_000, options: Pick<RegistryClientOptions, "clock" | "retry"> = {}) {
  return new RegistryClient({
    registries: [
      {
        url: proxy.url,
        auth: { username: reg.username!, password: reg.password! },
        blobRedirects: [storage.url],
      },
      { url: reg.url, auth: { username: reg.username!, password: reg.password! } },
    ],
    timeoutMs,
    retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-registry-faults-"));
  reg = await startRegistry({ auth: "htpasswd" });
  proxy = await startFaultProxy(reg.url);
  const image = await buildImageLayout(join(work, "image"), { layerSize: 256 * 1024 });
  digest = await pushImage(image.dir, reg, "fault/app:v1");
  const manifest = await (await registryFetch(reg, `/v2/fault/app/manifests/${digest}`)).json();
  layer = (manifest as { layers: Descriptor[] }).layers[0]!;
  layerBytes = Buffer.from(
    await (await registryFetch(reg, `/v2/fault/app/blobs/${layer.digest}`)).arrayBuffer(),
  );
  storage = await startStubServer((req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": layerBytes.length });
    res.end(req.method === "HEAD" ? undefined : layerBytes);
  });
  unlisted = await startStubServer();
});
afterEach(() => {
  proxy.clearFaults();
  proxy.clearRequests();
});
afterAll(async () => {
  await Promise.all([proxy?.stop(), storage?.stop(), unlisted?.stop()]);
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("bytes that do not match their digest", () => {
  it("are refused for a manifest read by digest, and by tag (against the announced digest)", async () => {
    const repo = await warmRepo();
    proxy.addFault({ match: (r) => r.method === "GET" && isManifest(r.path), action: { kind: "corrupt" } });
    expect(await codeOf(repo.fetchManifest(digest))).toBe("digest_mismatch");
    expect(await codeOf(repo.fetchManifest("v1"))).toBe("digest_mismatch");
    proxy.clearFaults();
    expect((await repo.fetchManifest(digest)).descriptor.digest).toBe(digest);
  });

  it("are refused for a blob, and a corrupted stream is never committed by a copy", async () => {
    const c = client();
    const repo = c.repository({ registry: proxy.host, repository: "fault/app" });
    proxy.addFault({ match: (r) => r.method === "GET" && isBlob(r.path), action: { kind: "corrupt" } });
    expect(await codeOf(repo.fetchBlob(layer, { maxBytes: 1024 * 1024 }))).toBe("digest_mismatch");
    // Across registries (the proxy and the registry behind it count as two), the layer is streamed.
    const destination = c.repository({ registry: reg.host, repository: "fault/copy" });
    expect(await codeOf(copyArtifact(repo, digest, destination, { attachments: false }))).toBe(
      "digest_mismatch",
    );
    expect(await destination.hasBlob(layer)).toBe(false);
    expect(await destination.hasManifest(digest)).toBe(false);
  });
});

describe("retries", () => {
  it("retries a 500 and then succeeds", async () => {
    const repo = await warmRepo();
    proxy.addFault({ match: (r) => isManifest(r.path), action: { kind: "status", status: 500 }, times: 1 });
    expect((await repo.fetchManifest(digest)).descriptor.digest).toBe(digest);
    expect(proxy.requests.filter((r) => isManifest(r.path)).map((r) => r.status)).toEqual([500, 200]);
  });

  it("waits its backoff on the client's clock", async () => {
    const clock = new FakeClock();
    // Full jitter at one half of a 10 s ceiling: the one retry comes 5 s (on the clock) later.
    const retry = { retries: 1, baseDelayMs: 10_000, maxDelayMs: 10_000, random: () => 0.5 };
    const repo = client(5_000, { clock, retry }).repository({
      registry: proxy.host,
      repository: "fault/app",
    });
    expect(await repo.hasManifest(digest)).toBe(true);
    proxy.clearRequests();
    proxy.addFault({ match: (r) => isManifest(r.path), action: { kind: "status", status: 503 }, times: 1 });
    const fetching = repo.fetchManifest(digest);
    await clock.whenSleeping();
    await clock.advance(4_999);
    expect(proxy.count((r) => isManifest(r.path))).toBe(1);
    await clock.advance(1);
    expect((await fetching).descriptor.digest).toBe(digest);
    expect(proxy.requests.filter((r) => isManifest(r.path)).map((r) => r.status)).toEqual([503, 200]);
  });

  it("retries a 429 and a reset connection", async () => {
    const repo = await warmRepo();
    proxy.addFault({
      match: (r) => isBlob(r.path),
      action: { kind: "status", status: 429, headers: { "retry-after": "0" } },
      times: 1,
    });
    proxy.addFault({ match: (r) => isBlob(r.path), action: { kind: "reset" }, times: 1 });
    expect((await repo.fetchBlob(layer, { maxBytes: 1024 * 1024 })).byteLength).toBe(layer.size);
    expect(proxy.count((r) => isBlob(r.path))).toBe(3);
  });

  it("restarts a blob transfer whose source connection broke mid-stream", async () => {
    const c = client();
    const source = c.repository({ registry: proxy.host, repository: "fault/app" });
    expect(await source.hasManifest(digest)).toBe(true);
    proxy.clearRequests();
    proxy.addFault({
      match: (r) => r.method === "GET" && r.path === `/v2/fault/app/blobs/${layer.digest}`,
      action: { kind: "truncate" },
      times: 1,
    });
    const destination = c.repository({ registry: reg.host, repository: "fault/restarted" });
    const result = await copyArtifact(source, digest, destination, {
      attachments: false,
      retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 },
    });
    expect(result.blobs.uploaded).toBe(2);
    expect(proxy.count((r) => r.path === `/v2/fault/app/blobs/${layer.digest}`)).toBe(2);
    expect(await destination.hasBlob(layer)).toBe(true);
  });

  it("gives up after the bounded number of retries", async () => {
    const repo = await warmRepo();
    proxy.addFault({ match: (r) => isManifest(r.path), action: { kind: "status", status: 503 } });
    expect(await codeOf(repo.fetchManifest(digest))).toBe("upstream_failed");
    expect(proxy.count((r) => isManifest(r.path))).toBe(4);
  });

  it("never retries another 4xx", async () => {
    const repo = await warmRepo();
    for (const status of [400, 403, 404] as const) {
      proxy.clearRequests();
      proxy.clearFaults();
      proxy.addFault({ match: (r) => isManifest(r.path), action: { kind: "status", status } });
      expect(await codeOf(repo.fetchManifest(digest))).toBe(
        { 400: "upstream_failed", 403: "upstream_denied", 404: "not_found" }[status],
      );
      expect(proxy.count((r) => isManifest(r.path))).toBe(1);
    }
  });
});

describe("malformed answers", () => {
  it("are upstream_invalid, which is final: a tag or referrers list that is not JSON", async () => {
    const repo = await warmRepo();
    const notJson = {
      kind: "status",
      status: 200,
      headers: { "content-type": "application/json" },
      body: "<html>",
    } as const;
    proxy.addFault({ match: (r) => r.path.startsWith("/v2/fault/app/tags/list"), action: notJson });
    const err = await repo.listTags().catch((e: unknown) => e);
    expect(isFerryError(err, "upstream_invalid")).toBe(true);
    expect(isRetryable(err)).toBe(false);
  });
});

describe("stalls", () => {
  it("time out when no answer comes, without a retry", async () => {
    const repo = await warmRepo(300);
    proxy.addFault({ match: (r) => isManifest(r.path), action: { kind: "stall" } });
    expect(await codeOf(repo.fetchManifest(digest))).toBe("upstream_timeout");
    expect(proxy.count((r) => isManifest(r.path))).toBe(1);
  });

  it("time out when the body stops arriving", async () => {
    const repo = await warmRepo(300);
    proxy.addFault({ match: (r) => r.method === "GET" && isBlob(r.path), action: { kind: "stall-body" } });
    expect(await codeOf(repo.fetchBlob(layer, { maxBytes: 1024 * 1024 }))).toBe("upstream_timeout");
  });
});

describe("redirects", () => {
  it("are not followed to an unlisted host", async () => {
    const repo = await warmRepo();
    proxy.addFault({
      match: (r) => isBlob(r.path),
      action: { kind: "redirect", location: `${unlisted.url}/blob` },
    });
    expect(await codeOf(repo.fetchBlob(layer, { maxBytes: 1024 * 1024 }))).toBe("forbidden");
    expect(unlisted.requests).toEqual([]);
  });

  it("reach listed blob storage without the Authorization header", async () => {
    const repo = await warmRepo();
    proxy.addFault({
      match: (r) => r.method === "GET" && isBlob(r.path),
      action: { kind: "redirect", location: `${storage.url}/bucket/blob?signature=abc` },
    });
    storage.requests.length = 0;
    const bytes = await repo.fetchBlob(layer, { maxBytes: 1024 * 1024 });
    expect(Buffer.from(bytes).equals(layerBytes)).toBe(true);
    expect(storage.requests.map((r) => r.path)).toEqual(["/bucket/blob?signature=abc"]);
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
    // The registry itself did get credentials (the request that answered with the redirect).
    expect(proxy.requests.some((r) => isBlob(r.path) && r.headers.authorization?.startsWith("Basic "))).toBe(
      true,
    );
  });

  it("are not followed to storage for anything but a blob read", async () => {
    const repo = await warmRepo();
    proxy.addFault({
      match: (r) => isManifest(r.path),
      action: { kind: "redirect", location: `${storage.url}/manifest` },
    });
    storage.requests.length = 0;
    expect(await codeOf(repo.fetchManifest(digest))).toBe("forbidden");
    expect(storage.requests).toEqual([]);
  });
});
