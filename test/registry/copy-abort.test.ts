import { once } from "node:events";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";
import { copyArtifact } from "../../src/registry/copy.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { type RecordingRelay, startRecordingRelay } from "../support/net.ts";
import { makeTempDir } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

/**
 * A copy's signal stops the copy itself, not only the wait for it: a layer whose body stalls (the
 * fault proxy sends half of it, then nothing) is aborted when the signal aborts, the copy rejects
 * with the signal's reason, and the connection that carried the stalled body is closed then, not
 * when the registry client's own stall timer (here 10 minutes) would fire.
 *
 * The source is reached through a TCP relay that records which connection carried the layer
 * request (`startRecordingRelay`, as in test/verify/deadline.test.ts). Without the signal reaching
 * the reads, the copy kept waiting on the stalled body and this test ran into its own timeout.
 *
 * The same holds on the write side: a destination that takes a blob upload's body and then never
 * answers (the fault proxy stalls the PUT) is left when the signal aborts, through a second relay
 * and proxy in front of the target. Before the writes took the signal, that copy hung too.
 */
let source: TestRegistry;
let target: TestRegistry;
let proxy: FaultProxy;
let relay: RecordingRelay;
let relayHost: string;
let tmp: { path: string; remove: () => Promise<void> };
let digest: string;
let layerDigest: string;
let carriers: Socket[] = [];
let targetProxy: FaultProxy;
let targetRelay: RecordingRelay;
let uploadCarriers: Socket[] = [];

beforeAll(async () => {
  tmp = await makeTempDir("copy-abort");
  [source, target] = await Promise.all([startRegistry(), startRegistry()]);
  proxy = await startFaultProxy(source.url);
  relay = await startRecordingRelay(
    proxy.url,
    (chunk) => layerDigest !== undefined && chunk.includes(`/blobs/${layerDigest}`),
  );
  relayHost = relay.host;
  carriers = relay.carriers;
  targetProxy = await startFaultProxy(target.url);
  // The upload's closing PUT carries `digest=sha256%3A<hex>` in its query: match it by the hex.
  targetRelay = await startRecordingRelay(
    targetProxy.url,
    (chunk) =>
      layerDigest !== undefined &&
      chunk.includes("PUT /v2/") &&
      chunk.includes(layerDigest.slice("sha256:".length)),
  );
  uploadCarriers = targetRelay.carriers;
  // Random bytes do not compress: the layer arrives in many chunks, so half of it is a real partial body.
  const layout = await buildImageLayout(`${tmp.path}/layout`, { layerSize: 1024 * 1024 });
  digest = await pushImage(layout.dir, source, "team/app:v1");
  layerDigest = layout.manifests[0]!.layerDigests[0]!;
});

afterAll(async () => {
  relay?.stop();
  targetRelay?.stop();
  await Promise.all([proxy?.stop(), targetProxy?.stop()]);
  await Promise.all([source?.stop(), target?.stop()]);
  await tmp?.remove();
});

describe("copyArtifact with a signal", () => {
  it("rejects with the signal's reason when it aborts mid-transfer, and closes the stalled connection", async () => {
    const client = new RegistryClient({
      registries: [{ url: `http://${relayHost}` }, { url: target.url }],
      // The client's own stall timer is far beyond the test's timeout: only the signal can act.
      timeoutMs: 600_000,
      retry: { retries: 0 },
    });
    proxy.addFault({
      match: (r) => r.method === "GET" && r.path.includes(`/blobs/${layerDigest}`),
      action: { kind: "stall-body" },
    });
    const stop = new AbortController();
    const copy = copyArtifact(
      client.repository({ registry: relayHost, repository: "team/app" }),
      digest,
      client.repository({ registry: target.host, repository: "team/app" }),
      { signal: stop.signal, attachments: false },
    );
    copy.catch(() => {});
    // Abort once the stalled body is on its way: the relay carried the layer request and the proxy
    // behind it took it (under load the relay may see it well before the proxy does).
    const layerRequests = () => proxy.count((r) => r.path.includes(`/blobs/${layerDigest}`));
    while (carriers.length === 0 || layerRequests() === 0)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const reason = new Error("lease lost");
    stop.abort(reason);
    await expect(copy).rejects.toBe(reason);

    expect(layerRequests()).toBe(1);
    expect(carriers).toHaveLength(1);
    const carrier = carriers[0]!;
    // Released: the client closed the connection that carried the stalled body.
    if (!carrier.destroyed) await once(carrier, "close");
    expect(carrier.destroyed).toBe(true);
    // The manifest was never written: the copy stopped before it.
    expect(
      await client.repository({ registry: target.host, repository: "team/app" }).hasManifest(digest),
    ).toBe(false);

    // And the copy completes once the registry answers again (nothing stuck).
    proxy.clearFaults();
    const again = await copyArtifact(
      client.repository({ registry: relayHost, repository: "team/app" }),
      digest,
      client.repository({ registry: target.host, repository: "team/app" }),
      { attachments: false },
    );
    expect(again.digest).toBe(digest);
  });

  it("rejects when it aborts while the destination stalls on an upload, and closes that connection", {
    timeout: 15_000,
  }, async () => {
    const client = new RegistryClient({
      registries: [{ url: source.url }, { url: `http://${targetRelay.host}` }],
      // As above: only the signal can end the stalled upload before the test's timeout.
      timeoutMs: 600_000,
      retry: { retries: 0 },
    });
    const isLayerPut = (r: { method: string; path: string }) =>
      r.method === "PUT" && r.path.includes(layerDigest.slice("sha256:".length));
    // The proxy reads the whole body, then never answers.
    targetProxy.addFault({ match: isLayerPut, action: { kind: "stall" } });
    const destination = client.repository({ registry: targetRelay.host, repository: "stalled/app" });
    const stop = new AbortController();
    const copy = copyArtifact(
      client.repository({ registry: source.host, repository: "team/app" }),
      digest,
      destination,
      {
        signal: stop.signal,
        attachments: false,
      },
    );
    copy.catch(() => {});
    while (targetProxy.count(isLayerPut) === 0 || uploadCarriers.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const reason = new Error("lease lost");
    stop.abort(reason);
    await expect(copy).rejects.toBe(reason);

    expect(targetProxy.count(isLayerPut)).toBe(1);
    expect(uploadCarriers).toHaveLength(1);
    const carrier = uploadCarriers[0]!;
    // Released: the client closed the connection the stalled upload was waiting on.
    if (!carrier.destroyed) await once(carrier, "close");
    expect(carrier.destroyed).toBe(true);
    expect(await destination.hasManifest(digest)).toBe(false);

    // And the copy completes once the destination answers again.
    targetProxy.clearFaults();
    const again = await copyArtifact(
      client.repository({ registry: source.host, repository: "team/app" }),
      digest,
      destination,
      { attachments: false },
    );
    expect(again.digest).toBe(digest);
  });

  it("makes no request at all with a signal aborted before it starts", async () => {
    const client = new RegistryClient({ registries: [{ url: `http://${relayHost}` }, { url: target.url }] });
    proxy.clearRequests();
    const reason = new Error("stopped");
    await expect(
      copyArtifact(
        client.repository({ registry: relayHost, repository: "team/app" }),
        digest,
        client.repository({ registry: target.host, repository: "other/app" }),
        { signal: AbortSignal.abort(reason) },
      ),
    ).rejects.toBe(reason);
    expect(proxy.count()).toBe(0);
  });
});
