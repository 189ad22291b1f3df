import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseConfigText } from "../../src/config/load.ts";
import { type CopiedObjects, registryPort } from "../../src/promotion/ports.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { copyArtifact } from "../../src/registry/copy.ts";
import { createVerificationService } from "../../src/verify/create.ts";
import type { VerificationService } from "../../src/verify/service.ts";
import { attest, generateKeyPair, sign } from "../support/cosign.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { makeTempDir } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { Predicates, predicateFile, pushFresh } from "./fixtures.ts";

// The verification after a copy (a promotion's copy step) takes what the copy established from the
// source's verified reads, and asks the target only what can differ there: its tags and referrers.
// The source is read directly, the target through a counting proxy (another host: no mounts).

let reg: TestRegistry;
let proxy: FaultProxy;
let tmp: { path: string; remove: () => Promise<void> };
let service: VerificationService;
let source: { digest: string; ref: string };
const sourceRepo = () => `${reg.host}/team/app`;

beforeAll(async () => {
  tmp = await makeTempDir("copy-seed");
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  const ci = await generateKeyPair(join(tmp.path, "ci"));
  source = await pushFresh(reg, tmp.path, "seeded");
  const spdx = await predicateFile(tmp.path, "spdx", Predicates.spdx());
  const ok = (r: { code: number; stderr: string }) => {
    if (r.code !== 0) throw new Error(r.stderr);
  };
  ok(await sign(source.ref, ci.privateKeyPath));
  ok(await attest(source.ref, ci.privateKeyPath, spdx, "spdxjson"));
  const config = {
    store: { sqlite: ":memory:" },
    keys: { signing: "./signing.pem" },
    registries: [{ url: reg.url }, { url: proxy.url }],
    trust: { authorities: [{ name: "ci", key: ci.publicKeyPath }] },
    environments: [
      { name: "prod", require: { signature: { authorities: ["ci"] }, sbom: { authorities: ["ci"] } } },
    ],
  };
  const loaded = parseConfigText(stringify(config), join(tmp.path, "ferry.yaml"), {});
  const client = new RegistryClient({
    registries: [{ url: reg.url }, { url: proxy.url }],
    retry: { retries: 0 },
  });
  service = createVerificationService(loaded.config, { readerFor: (ref) => client.repository(ref) });
  // The source verification, as the promotion's gate runs it: it fills the cache the seed names.
  expect((await service.verify(source.ref, "prod")).allowed).toBe(true);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await tmp?.remove();
});

/** Copies the source into `repo` behind the proxy through the promotion's registry port. */
async function copyThroughPort(repo: string): Promise<CopiedObjects> {
  const client = new RegistryClient({
    registries: [{ url: reg.url }, { url: proxy.url }],
    retry: { retries: 0 },
  });
  const port = registryPort((ref) => client.repository(ref));
  const copied = await port.copy(
    sourceRepo(),
    `${proxy.host}/${repo}`,
    source.digest,
    new AbortController().signal,
  );
  if (copied === undefined) throw new Error("the registry port told nothing of the copy");
  return copied;
}

describe("verification after a copy, seeded with the copy's objects", () => {
  it("reads no manifest or blob the copy put there, only the target's tags and referrers", async () => {
    const copied = await copyThroughPort("prod/app");
    expect(copied.manifests.has(source.digest)).toBe(true);
    proxy.clearRequests();
    const report = await service.verify(`${proxy.host}/prod/app@${source.digest}`, "prod", {
      copiedFrom: { source: sourceRepo(), ...copied },
    });
    expect(report.allowed).toBe(true);
    const paths = proxy.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths.filter((p) => p.includes("/blobs/"))).toEqual([]);
    expect(paths).not.toContain(`GET /v2/prod/app/manifests/${source.digest}`);
    // Discovery still ran against the target: both legacy tags were asked of it.
    const tag = source.digest.replace(":", "-");
    expect(paths).toContain(`GET /v2/prod/app/manifests/${tag}.sig`);
    expect(paths).toContain(`GET /v2/prod/app/manifests/${tag}.att`);
  });

  it("fails closed: a signature the copy did not carry is missing, whatever the seed claims", async () => {
    // The image alone, without its signature and attestation.
    const client = new RegistryClient({
      registries: [{ url: reg.url }, { url: proxy.url }],
      retry: { retries: 0 },
    });
    const src = client.repository({ registry: reg.host, repository: "team/app" });
    const dst = client.repository({ registry: proxy.host, repository: "prod/bare" });
    await copyArtifact(src, source.digest, dst, { attachments: false });
    // A seed that claims every object of the source, signatures included.
    const full = await copyThroughPort("prod/full");
    const report = await service.verify(`${proxy.host}/prod/bare@${source.digest}`, "prod", {
      copiedFrom: { source: sourceRepo(), ...full },
    });
    expect(report.allowed).toBe(false);
    expect(report.checks.find((c) => c.name === "signature")).toMatchObject({ passed: false });
  });

  it("reads from the target what the seed does not name", async () => {
    await copyThroughPort("prod/unseeded");
    proxy.clearRequests();
    const empty = { manifests: new Set<string>(), blobs: new Set<string>() };
    const report = await service.verify(`${proxy.host}/prod/unseeded@${source.digest}`, "prod", {
      copiedFrom: { source: sourceRepo(), ...empty },
    });
    expect(report.allowed).toBe(true);
    expect(
      proxy.count((r) => r.method === "GET" && r.path === `/v2/prod/unseeded/manifests/${source.digest}`),
    ).toBe(1);
    expect(proxy.count((r) => r.path.includes("/blobs/"))).toBeGreaterThan(0);
  });
});
