/**
 * Verification latency and registry requests, beside cosign on the same image in the same run.
 * `npm run bench:verify` (or `node bench/verify.ts` with Node 24). Prints figures; asserts nothing.
 *
 * The image carries a cosign key signature (`.sig`), an SPDX SBOM and a SLSA v0.2 provenance
 * attestation (`.att`). Cold: a fresh service (empty caches) per run. Warm: the same service again.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "yaml";
import { parseConfigText } from "../src/config/load.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { createVerificationService } from "../src/verify/create.ts";
import { attest, generateKeyPair, sign, verify, verifyAttestation } from "../test/support/cosign.ts";
import { makeTempDir } from "../test/support/proc.ts";
import { startRegistry } from "../test/support/registry.ts";
import { Predicates, predicateFile, pushFresh } from "../test/verify/fixtures.ts";

const RUNS = 15;
const WARM_RUNS = 200;
const REPO = "https://github.com/acme/web";
const BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(2)} ms`;

const tmp = await makeTempDir("bench-verify");
const reg = await startRegistry();
try {
  const keys = await generateKeyPair(join(tmp.path, "keys"));
  const { ref } = await pushFresh(reg, tmp.path, "bench");
  const spdx = await predicateFile(tmp.path, "spdx", Predicates.spdx());
  const slsa = await predicateFile(tmp.path, "slsa", Predicates.slsa02(REPO, "refs/heads/main", BUILDER));
  for (const r of [
    await sign(ref, keys.privateKeyPath),
    await attest(ref, keys.privateKeyPath, spdx, "spdxjson"),
    await attest(ref, keys.privateKeyPath, slsa, "slsaprovenance02"),
  ]) {
    if (r.code !== 0) throw new Error(r.stderr);
  }

  let requests = 0;
  const counting = (input: string | URL | Request, init?: RequestInit) => {
    requests++;
    return fetch(input, init);
  };
  const config = parseConfigText(
    stringify({
      store: { sqlite: ":memory:" },
      keys: { signing: "./k.pem" },
      registries: [{ url: reg.url }],
      trust: { authorities: [{ name: "ci", key: keys.publicKeyPath }] },
      environments: [
        {
          name: "prod",
          require: {
            signature: { authorities: ["ci"] },
            sbom: { authorities: ["ci"] },
            provenance: { authorities: ["ci"], builderId: BUILDER, sourceRepository: REPO },
          },
        },
      ],
    }),
    join(tmp.path, "ferry.yaml"),
    {},
  ).config;
  const newService = () => {
    const client = new RegistryClient({
      registries: [{ url: reg.url }],
      fetch: counting,
      retry: { retries: 0 },
    });
    return createVerificationService(config, { readerFor: (r) => client.repository(r) });
  };

  // Warm up the JIT once, outside the figures.
  await newService().verify(ref, "prod");

  const cold: number[] = [];
  let coldRequests = 0;
  let service = newService();
  for (let i = 0; i < RUNS; i++) {
    service = newService();
    requests = 0;
    const t = performance.now();
    const report = await service.verify(ref, "prod");
    cold.push(performance.now() - t);
    coldRequests = requests;
    if (!report.allowed) throw new Error(`bench image denied: ${JSON.stringify(report.checks)}`);
  }
  const warm: number[] = [];
  let warmRequests = 0;
  for (let i = 0; i < WARM_RUNS; i++) {
    requests = 0;
    const t = performance.now();
    const report = await service.verify(ref, "prod");
    warm.push(performance.now() - t);
    warmRequests = requests;
    if (!report.cached) throw new Error("warm run not answered from cache");
  }

  const cosignRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const results = [
      await verify(ref, keys.publicKeyPath),
      await verifyAttestation(ref, keys.publicKeyPath, "spdxjson"),
      await verifyAttestation(ref, keys.publicKeyPath, "slsaprovenance02"),
    ];
    cosignRuns.push(performance.now() - t);
    for (const r of results) if (r.code !== 0) throw new Error(`cosign failed: ${r.stderr}`);
  }

  // The objects a verification needs: subject manifest, .sig manifest + 1 payload, .att manifest +
  // 2 envelopes, and the referrers lookup (distribution 2.8: the API answers 404, then the fallback tag).
  const minimumCold = 1 + 2 + 3 + 2;
  // Warm: the mutable lookups only (.sig, .att, fallback tag: the client remembers the API is absent).
  const minimumWarm = 3;
  const c = median(cold);
  const w = median(warm);
  const k = median(cosignRuns);
  console.log(`verification of ${ref} (signature + SBOM + provenance)`);
  console.log(
    `  cold  median ${ms(c)} over ${RUNS} runs, ${coldRequests} registry requests (minimum ${minimumCold})`,
  );
  console.log(
    `  warm  median ${ms(w)} over ${WARM_RUNS} runs, ${warmRequests} registry requests (minimum ${minimumWarm})`,
  );
  console.log(`  cosign verify + verify-attestation x2: median ${ms(k)} over ${cosignRuns.length} runs`);
  console.log(
    `  ratio cosign / ferry cold: ${(k / c).toFixed(1)}x; cosign / ferry warm: ${(k / w).toFixed(0)}x`,
  );
  console.log(
    `  targets: cold < cosign ${c < k ? "met" : "NOT met"}; warm < 5 ms ${w < 5 ? "met" : "NOT met"}`,
  );
} finally {
  await reg.stop();
  await tmp.remove();
}
