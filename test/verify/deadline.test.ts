import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseConfigText } from "../../src/config/load.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { digestTag } from "../../src/registry/digest.ts";
import { createVerificationService } from "../../src/verify/create.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { type RecordingRelay, startRecordingRelay } from "../support/net.ts";
import { makeTempDir } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { clientFor } from "./fixtures.ts";

/**
 * The verification deadline cancels the work it abandons: a blob whose body stalls (the fault
 * proxy sends half of it, then nothing) is aborted when the deadline passes, and its connection is
 * closed then, not when the registry client's own stall timer (here 10 minutes) would fire.
 *
 * The client reaches the fault proxy through a TCP relay that records which connection carried
 * the stalled blob request, so the test can wait for exactly that connection to close. Before the
 * deadline aborted reads, it stayed open and this test ran into its own timeout.
 */
let reg: TestRegistry;
let proxy: FaultProxy;
let relay: RecordingRelay;
let relayHost: string;
let tmp: { path: string; remove: () => Promise<void> };
let image: string;
let layerDigest: string;
let carriers: Socket[] = [];

const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const key = generateKeyPairSync("ec", { namedCurve: "P-256" });

beforeAll(async () => {
  tmp = await makeTempDir("verify-deadline");
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  relay = await startRecordingRelay(
    proxy.url,
    (chunk) => layerDigest !== undefined && chunk.includes(`/blobs/${layerDigest}`),
  );
  relayHost = relay.host;
  carriers = relay.carriers;

  const repo = clientFor(reg).repository({ registry: reg.host, repository: "team/app" });
  const put = async (bytes: Uint8Array, mediaType: string) => {
    const d = { mediaType, digest: sha(bytes), size: bytes.byteLength };
    await repo.putBlob(d, bytes);
    return d;
  };
  const config = await put(
    encode({ architecture: "", os: "", config: {} }),
    "application/vnd.oci.image.config.v1+json",
  );
  const { digest } = await repo.putManifest(
    encode({ schemaVersion: 2, mediaType: MANIFEST, config, layers: [] }),
    MANIFEST,
  );
  const payload = encode({
    critical: {
      identity: { "docker-reference": `${relayHost}/team/app` },
      image: { "docker-manifest-digest": digest },
      type: "cosign container image signature",
    },
    // Large enough to arrive in several chunks, so half of it is a real partial body.
    optional: { pad: "x".repeat(256 * 1024) },
  });
  const layer = await put(payload, "application/vnd.dev.cosign.simplesigning.v1+json");
  layerDigest = layer.digest;
  const signature = sign("sha256", payload, key.privateKey).toString("base64");
  const sigManifest = {
    schemaVersion: 2,
    mediaType: MANIFEST,
    config,
    layers: [{ ...layer, annotations: { "dev.cosignproject.cosign/signature": signature } }],
  };
  await repo.putManifest(encode(sigManifest), MANIFEST, { tag: `${digestTag(digest)}.sig` });
  image = `${relayHost}/team/app@${digest}`;
});

afterAll(async () => {
  relay?.stop();
  await proxy?.stop();
  await reg?.stop();
  await tmp?.remove();
});

/**
 * A verification service that reaches the registry through the relay, with no retries and a
 * registry client stall timer of 10 minutes: `deadline` (the trust timeout) is the verification
 * deadline, and the `prod` environment requires a signature of the `ci` key.
 */
async function relayedService(deadline: string) {
  const keyFile = `${tmp.path}/ci.pub`;
  await writeFile(keyFile, key.publicKey.export({ format: "pem", type: "spki" }));
  const text = stringify({
    store: { sqlite: ":memory:" },
    keys: { signing: "./signing.pem" },
    registries: [{ url: `http://${relayHost}` }],
    registryClient: { timeout: "10m", retries: 0 },
    trust: { timeout: deadline, authorities: [{ name: "ci", key: keyFile }] },
    environments: [{ name: "prod", require: { signature: { authorities: ["ci"] } } }],
  });
  const { config } = parseConfigText(text, `${tmp.path}/ferry.yaml`, {});
  const client = new RegistryClient({
    registries: config.registries,
    timeoutMs: config.registryClient.timeout,
    retry: { retries: 0 },
  });
  return createVerificationService(config, { readerFor: (ref) => client.repository(ref) });
}

describe("the verification deadline", () => {
  it("aborts a stalled blob read and closes its connection", async () => {
    // The client's own stall timer is far beyond the test's timeout: only the deadline can act.
    const service = await relayedService("1s");
    proxy.addFault({
      match: (r) => r.method === "GET" && r.path.includes(`/blobs/${layerDigest}`),
      action: { kind: "stall-body" },
    });

    const report = await service.verify(image, "prod");
    expect(report).toMatchObject({ allowed: false, checks: [{ name: "discovery", reason: "timeout" }] });
    expect(proxy.count((r) => r.path.includes(`/blobs/${layerDigest}`))).toBe(1);
    expect(carriers).toHaveLength(1);
    const carrier = carriers[0]!;
    // Released: the client closed the connection that carried the stalled body.
    if (!carrier.destroyed) await once(carrier, "close");
    expect(carrier.destroyed).toBe(true);

    // And the same image verifies once the registry answers again (nothing stuck, nothing cached).
    proxy.clearFaults();
    expect((await service.verify(image, "prod")).allowed).toBe(true);
  });

  it("the caller's signal does the same: the stalled read is aborted, its connection closed", async () => {
    // Neither the client's stall timer nor the deadline acts within the test's timeout.
    const service = await relayedService("10m");
    proxy.clearRequests();
    proxy.addFault({
      match: (r) => r.method === "GET" && r.path.includes(`/blobs/${layerDigest}`),
      action: { kind: "stall-body" },
    });
    const before = carriers.length;
    const stop = new AbortController();
    const verifying = service.verify(image, "prod", { signal: stop.signal });
    verifying.catch(() => {});
    // Abort once the stalled body is on its way (the relay saw the blob request).
    while (carriers.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
    const reason = new Error("lease lost");
    stop.abort(reason);
    // Rejected with the caller's reason: a report of reads it cut short would be no decision.
    await expect(verifying).rejects.toBe(reason);
    expect(proxy.count((r) => r.path.includes(`/blobs/${layerDigest}`))).toBe(1);
    expect(carriers).toHaveLength(before + 1);
    const carrier = carriers[before]!;
    if (!carrier.destroyed) await once(carrier, "close");
    expect(carrier.destroyed).toBe(true);

    proxy.clearFaults();
    expect((await service.verify(image, "prod", { signal: new AbortController().signal })).allowed).toBe(
      true,
    );
  });
});
