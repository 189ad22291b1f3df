// Promotion benchmark: `npm run bench:promote` (or `npx node bench/promote.ts`). Prints figures,
// asserts nothing; not part of the test suite.
//
// (1) One promotion of an image with a 64 MiB layer, a cosign signature, an SPDX SBOM and a SLSA
//     provenance attestation, from registry A (staging) to registry B (production), from the request
//     to `promoted` (no approvals, no GitOps), beside what a pipeline would script instead in the same
//     run: `cosign verify` + `cosign verify-attestation` ×2 + `cosign copy` of the same image. Ferry's
//     registry requests are counted through fault proxies and set against the minimum needed.
// (2) 100 concurrent promotions of distinct apps (small signed images): throughput, p50/p99 from
//     request to `promoted`, and the peak RSS of the Ferry process.
// (3) The cost of evidence: small promotions one at a time, alternately into an environment that
//     signs and attaches a verification summary (the default) and one that does not
//     (`evidence.summary: false`), request to `promoted`; and the evidence step's own time in (1).
//
// Ferry runs as its own process (`ferry serve`), so its RSS is its own; both registries run
// docker-registry 2.8 with htpasswd on loopback. Timed runs go straight to the registries; requests
// are counted in one more round of each side through counting proxies (the proxy's hop costs
// 0.3-0.7 s on 64 MiB here, so it stays out of the times). The counted app, `web-counted`, names the
// proxies' hosts in its `images`; the same registries are behind them.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ApiClient } from "../src/cli/api-client.ts";
import { isFinished, type Promotion, PromotionResource } from "../src/cli/promotion-format.ts";
import { generateSigningKeyPem } from "../src/signing/keys.ts";
import { githubClaims } from "../test/identity/fixtures.ts";
import {
  attest,
  generateKeyPair,
  runCosign,
  sign,
  verify,
  verifyAttestation,
} from "../test/support/cosign.ts";
import { type FaultProxy, startFaultProxy } from "../test/support/fault-proxy.ts";
import { buildImageLayout, pushImage } from "../test/support/images.ts";
import { getFreePort } from "../test/support/net.ts";
import { loopbackIssuerConfig, startOidcIssuer } from "../test/support/oidc-issuer.ts";
import { makeTempDir, run, startProcess } from "../test/support/proc.ts";
import { MANIFEST_ACCEPT, startRegistry, type TestRegistry } from "../test/support/registry.ts";
import { Predicates, predicateFile } from "../test/verify/fixtures.ts";

const LAYER_BYTES = 64 * 1024 * 1024;
// Smaller runs while working on the engine: BENCH_ROUNDS=1 BENCH_APPS=20 npm run bench:promote
// Ferry runs compiled, as it ships (dist/, the container's entry point): Node's type stripping of the
// source costs some 30 MiB of RSS that production never pays. BENCH_FROM_SOURCE=1 runs src/ instead.
const FROM_SOURCE = process.env.BENCH_FROM_SOURCE === "1";
// BENCH_HEAP_SNAPSHOT=DIR: Ferry writes a heap snapshot into DIR when half of (2) has finished.
const SNAPSHOT_DIR = process.env.BENCH_HEAP_SNAPSHOT;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const APPS = Number(process.env.BENCH_APPS ?? 100);
const AUD = "https://ferry.bench";
const REPO = "https://github.com/acme/web";
const BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0";

const ms = (x: number) => `${x.toFixed(0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
};
const say = (text: string) => process.stdout.write(`${text}\n`);

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

function check(what: string, res: { code: number; stderr: string }): void {
  if (res.code !== 0) throw new Error(`${what} failed (${res.code}): ${res.stderr.trim()}`);
}

/** The kB figure of one line of /proc/PID/status (VmRSS, VmHWM). */
function procStatus(pid: number, field: "VmRSS" | "VmHWM"): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return Number(/(\d+)/.exec(line ?? "")?.[1] ?? Number.NaN);
}
const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;

/** Where Ferry's memory is, from its own /metrics (prom-client's default Node.js gauges). */
async function heapOf(url: string): Promise<string> {
  const text = await fetch(`${url}/metrics`).then(
    (r) => r.text(),
    () => "",
  );
  const gauge = (name: string) =>
    Number(new RegExp(`^ferry_${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  const m = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  return `heap used ${m(gauge("nodejs_heap_size_used_bytes"))} of ${m(gauge("nodejs_heap_size_total_bytes"))}, external ${m(gauge("nodejs_external_memory_bytes"))}`;
}

/** Requests seen by the proxies, by kind (method and object class), for the breakdown line. */
function tally(proxy: FaultProxy): string {
  const byKind = new Map<string, number>();
  for (const r of proxy.requests) {
    const kind = `${r.method} ${r.path
      .replace(/^\/v2\/[^?]*?\/blobs\/uploads\/.*$/, "uploads")
      .replace(/^\/v2\/[^?]*?\/(manifests|blobs|tags|referrers)\/.*$/, "$1")
      .replace(/^\/v2\/$/, "/v2/")}${r.status === 401 ? " (401)" : ""}`;
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  }
  return [...byKind].map(([k, n]) => `${k} ×${n}`).join(", ");
}

const users = { bench: `pw-${randomBytes(9).toString("hex")}` };
const auth = { username: "bench", password: users.bench };
const work = await makeTempDir("bench-promote");
const [a, b] = await Promise.all([
  startRegistry({ auth: "htpasswd", users }),
  startRegistry({ auth: "htpasswd", users }),
]);
const [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
const github = await startOidcIssuer();
let ferry: ReturnType<typeof startProcess> | undefined;
// One level below the checkout, as dist/ is (the server finds openapi.yaml at ../openapi.yaml); its
// own directory, so a build running elsewhere in the tree is not disturbed, removed at the end.
const build = join(import.meta.dirname, "..", `.bench-dist-${process.pid}`);

try {
  const keys = await generateKeyPair(join(work.path, "keys"));
  const spdx = await predicateFile(work.path, "spdx", Predicates.spdx());
  const slsa = await predicateFile(work.path, "slsa", Predicates.slsa02(REPO, "refs/heads/main", BUILDER));
  // Same user on both registries: one `--registry-username` serves cosign on both sides of a copy.
  const creds = ["--registry-username", auth.username, "--registry-password", auth.password];

  /** A fresh image in A's `repo` with a signature, an SBOM and a provenance attestation. */
  const pushFull = async (repo: string, name: string) => {
    const built = await buildImageLayout(join(work.path, name), { layerSize: LAYER_BYTES });
    const digest = await pushImage(built.dir, { host: a.host, ...auth }, `${repo}:${name}`);
    const ref = `${a.host}/${repo}@${digest}`;
    const registryAuth = { ...auth, registry: a.host };
    check("cosign sign", await sign(ref, keys.privateKeyPath, { registryAuth }));
    check("cosign attest spdx", await attest(ref, keys.privateKeyPath, spdx, "spdxjson", { registryAuth }));
    check(
      "cosign attest slsa",
      await attest(ref, keys.privateKeyPath, slsa, "slsaprovenance02", { registryAuth }),
    );
    return digest;
  };

  say(
    `building and signing ${ROUNDS + 2} images with one ${LAYER_BYTES / 1024 / 1024} MiB layer each, and ${APPS} small ones…`,
  );
  const big: string[] = [];
  for (let r = 0; r < ROUNDS; r++) big.push(await pushFull("staging/web", `r${r}`));
  // One for each side's counted round (cosign's copy must not find Ferry's blobs already in place).
  const counted = [await pushFull("staging/web-counted", "c0"), await pushFull("staging/web-counted", "c1")];
  const appName = (i: number) => `app-${String(i).padStart(3, "0")}`;
  const small = await pool(
    Array.from({ length: APPS }, (_, i) => i),
    4,
    async (i) => {
      const built = await buildImageLayout(join(work.path, appName(i)), {});
      const digest = await pushImage(built.dir, { host: a.host, ...auth }, `qa/${appName(i)}:v1`);
      check(
        "cosign sign",
        await sign(`${a.host}/qa/${appName(i)}@${digest}`, keys.privateKeyPath, {
          registryAuth: { ...auth, registry: a.host },
        }),
      );
      return digest;
    },
  );

  // ---- Ferry, as its own process -----------------------------------------------------------------
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = join(work.path, "ferry");
  await mkdir(dir);
  await writeFile(join(dir, "signing.pem"), generateSigningKeyPem(), { mode: 0o600 });
  const full = {
    signature: { authorities: ["ci"] },
    sbom: { authorities: ["ci"] },
    provenance: { authorities: ["ci"], builderId: BUILDER, sourceRepository: REPO },
  };
  const pipelines = [{ issuer: "github", claims: { repository_id: "74" } }];
  await writeFile(
    join(dir, "ferry.yaml"),
    // JSON is YAML; the yaml library would alias the shared objects and then refuse >100 aliases.
    JSON.stringify({
      server: { listen: `127.0.0.1:${port}`, publicUrl: AUD },
      store: { sqlite: "./ferry.db" },
      keys: { signing: "./signing.pem" },
      log: { level: "warn" },
      issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
      registries: [a.url, b.url, pa.url, pb.url].map((u) => ({ url: u, auth })),
      trust: { authorities: [{ name: "ci", key: keys.publicKeyPath }] },
      environments: [
        { name: "staging", require: full },
        { name: "production", after: "staging", require: full },
        { name: "qa", require: { signature: { authorities: ["ci"] } } },
        { name: "live", after: "qa", require: { signature: { authorities: ["ci"] } } },
        // (3): the same promotion with and without its verification summary.
        { name: "live-evidence", after: "qa", require: { signature: { authorities: ["ci"] } } },
        {
          name: "live-plain",
          after: "qa",
          require: { signature: { authorities: ["ci"] } },
          evidence: { summary: false },
        },
      ],
      apps: [
        {
          name: "web",
          images: { staging: `${a.host}/staging/web`, production: `${b.host}/prod/web` },
          pipelines,
        },
        {
          name: "web-counted",
          images: { staging: `${pa.host}/staging/web-counted`, production: `${pb.host}/prod/web-counted` },
          pipelines,
        },
        ...Array.from({ length: APPS }, (_, i) => ({
          name: appName(i),
          images: {
            qa: `${a.host}/qa/${appName(i)}`,
            live: `${b.host}/live/${appName(i)}`,
            "live-evidence": `${b.host}/live-evidence/${appName(i)}`,
            "live-plain": `${b.host}/live-plain/${appName(i)}`,
          },
          pipelines,
        })),
      ],
    }),
  );
  let main = join(import.meta.dirname, "../src/cli/main.ts");
  if (!FROM_SOURCE) {
    const tsc = join(import.meta.dirname, "../node_modules/typescript/bin/tsc");
    const project = join(import.meta.dirname, "../tsconfig.build.json");
    // Type errors do not stop the emit; a build that emitted nothing does.
    await run(process.execPath, [tsc, "-p", project, "--outDir", build, "--sourceMap", "false"]);
    main = join(build, "cli/main.js");
    readFileSync(main);
  }
  const snapshot = SNAPSHOT_DIR ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${SNAPSHOT_DIR}`] : [];
  // BENCH_NODE_FLAGS="--max-semi-space-size=…": V8 flags for Ferry's process, to try heap settings.
  snapshot.push(...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean));
  ferry = startProcess(process.execPath, [...snapshot, main, "serve", "--config", join(dir, "ferry.yaml")], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "" },
  });
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    const status = ferry.exitStatus();
    if (status !== undefined || i > 300)
      throw new Error(`ferry did not start (${status ?? "timeout"}): ${ferry.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = ferry.child.pid!;
  const idleRss = procStatus(pid, "VmRSS");
  const idleHeap = await heapOf(url);

  const token = () => github.sign(githubClaims({ iss: github.url, aud: AUD }));
  /** Requests a promotion and long-polls it to its end; returns it and the time taken. */
  const promoteAndWait = async (app: string, digest: string, to: string): Promise<[Promotion, number]> => {
    const client = new ApiClient({ server: url, token: await token(), timeoutMs: 120_000 });
    const t = performance.now();
    const created = await client.post("/v1/promotions", PromotionResource, { body: { app, digest, to } });
    let p = created.data;
    let etag = created.headers.get("etag");
    while (!isFinished(p.state)) {
      const res = await client.get(`/v1/promotions/${p.id}`, PromotionResource, {
        query: { wait: "30s" },
        ...(etag ? { headers: { "if-none-match": etag } } : {}),
        timeoutMs: 60_000,
      });
      p = res.data;
      etag = res.headers.get("etag") ?? etag;
    }
    const took = performance.now() - t;
    if (p.state !== "promoted")
      throw new Error(`${app} → ${to} ended ${p.state}: ${JSON.stringify(p.result ?? p.gates)}`);
    return [p, took];
  };

  // Warm-up outside the figures: one small app through both environments (JIT, connections, schema).
  await promoteAndWait(appName(0), small[0]!, "qa");
  const [warm, warmTook] = await promoteAndWait(appName(0), small[0]!, "live");

  // ---- (1) One promotion against the cosign pipeline ---------------------------------------------
  const opts = { extraArgs: creds };
  /** cosign verify + verify-attestation ×2 + cosign copy of `src` into `dest`. */
  const cosignPipeline = async (src: string, dest: string) => {
    const t = performance.now();
    check("cosign verify", await verify(src, keys.publicKeyPath, opts));
    check(
      "cosign verify-attestation spdx",
      await verifyAttestation(src, keys.publicKeyPath, "spdxjson", opts),
    );
    check(
      "cosign verify-attestation slsa",
      await verifyAttestation(src, keys.publicKeyPath, "slsaprovenance02", opts),
    );
    check(
      "cosign copy",
      await runCosign(["copy", "--allow-http-registry", "--allow-insecure-registry", ...creds, src, dest], {
        timeoutMs: 300_000,
      }),
    );
    return performance.now() - t;
  };
  const ferryTimes: number[] = [];
  const evidenceTimes: number[] = [];
  const phases: string[] = [];
  const cosignTimes: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const digest = big[r]!;
    await promoteAndWait("web", digest, "staging"); // the order gate: it must be in staging first
    const runFerry = async () => {
      const [p, took] = await promoteAndWait("web", digest, "production");
      ferryTimes.push(took);
      evidenceTimes.push(stepTime(p, "evidence"));
      phases.push(phasesOf(p, took));
    };
    const runCosignPipeline = async () => {
      cosignTimes.push(await cosignPipeline(`${a.host}/staging/web@${digest}`, `${b.host}/cosign/web${r}`));
    };
    // Alternate who goes first, so neither always meets a warmer page cache.
    if (r % 2 === 0) {
      await runFerry();
      await runCosignPipeline();
    } else {
      await runCosignPipeline();
      await runFerry();
    }
  }
  // The counted round of each side, through the proxies.
  await promoteAndWait("web-counted", counted[0]!, "staging");
  pa.clearRequests();
  pb.clearRequests();
  const [countedPromotion, countedTook] = await promoteAndWait("web-counted", counted[0]!, "production");
  const ferryCounts = { a: pa.count(), b: pb.count(), detailA: tally(pa), detailB: tally(pb) };
  pa.clearRequests();
  pb.clearRequests();
  const countedCosign = await cosignPipeline(
    `${pa.host}/staging/web-counted@${counted[1]!}`,
    `${pb.host}/cosign/counted`,
  );
  const cosignCounts = { a: pa.count(), b: pb.count(), detailA: tally(pa), detailB: tally(pb) };
  const bigRss = procStatus(pid, "VmHWM");

  // The fewest registry requests for the production promotion, on distribution 2.8 (no referrers
  // API) with a client new to each registry (one 401 challenge each):
  //   verification in A: subject manifest, .sig manifest + payload, .att manifest + 2 envelopes,
  //     referrers API (404) + fallback tag                                            = 8
  //   copy A → B (streamed, no mount across registries): manifest GET + PUT, per blob
  //     (config, layer) GET + POST + PUT; tag listing; .sig and .att manifests GET + PUT, their
  //     distinct blobs GET + POST + PUT each; referrers fallback lookup at A          = see below
  //   verification in B: the objects are the ones just verified and copied (same digests), so only
  //     what is mutable must be asked again: .sig and .att tags, referrers fallback    = 3
  const sigAtt = await attachmentBlobs(a, "staging/web", big[0]!);
  const copyMin = 2 + 2 * 3 + 1 + 2 * 2 + sigAtt * 3 + 1;
  const minimum = 2 + 8 + copyMin + 3;

  const f = median(ferryTimes);
  const c = median(cosignTimes);
  say("");
  say(
    `(1) one promotion of an image with a 64 MiB layer + signature + SBOM + provenance, registry A → B (median of ${ROUNDS}, direct; requests from one more round through counting proxies)`,
  );
  say("| what | time | registry requests |");
  say("| --- | ---: | ---: |");
  say(
    `| Ferry: POST /v1/promotions → promoted (verify in A, copy, verify in B, record) | ${ms(f)} | ${ferryCounts.a + ferryCounts.b} (minimum ${minimum}) |`,
  );
  say(
    `| cosign verify + verify-attestation ×2 + cosign copy | ${ms(c)} | ${cosignCounts.a + cosignCounts.b} |`,
  );
  say(`ratio cosign / Ferry: ${(c / f).toFixed(2)}x (target: Ferry faster — ${f < c ? "met" : "NOT met"})`);
  say(
    `all rounds (ms): ferry ${ferryTimes.map((x) => x.toFixed(0)).join(", ")}; cosign ${cosignTimes.map((x) => x.toFixed(0)).join(", ")}`,
  );
  for (const [r, line] of phases.entries()) say(`Ferry round ${r + 1}: ${line}`);
  say(`evidence step (sign + attach the summary in B, both formats): median ${ms(median(evidenceTimes))}`);
  say(
    `counted round, through the proxies: Ferry ${phasesOf(countedPromotion, countedTook)}; cosign ${ms(countedCosign)}`,
  );
  say(`Ferry requests: A ${ferryCounts.a} [${ferryCounts.detailA}]`);
  say(`                B ${ferryCounts.b} [${ferryCounts.detailB}]`);
  say(`cosign requests: A ${cosignCounts.a} [${cosignCounts.detailA}]`);
  say(`                 B ${cosignCounts.b} [${cosignCounts.detailB}]`);
  say(
    `minimum: 2 challenges + 8 verify in A + ${copyMin} copy (${sigAtt} distinct .sig/.att blobs) + 3 re-check in B = ${minimum}`,
  );

  // ---- (2) 100 concurrent promotions of distinct apps --------------------------------------------
  const apps = Array.from({ length: APPS - 1 }, (_, i) => i + 1); // app-000 was the warm-up
  await Promise.all(apps.map((i) => promoteAndWait(appName(i), small[i]!, "qa")));
  // app-000 (the warm-up, already live) is the 100th, with a second image promoted to qa like the others.
  const extra = { i: 0, digest: "" };
  {
    const built = await buildImageLayout(join(work.path, "app-000b"), {});
    extra.digest = await pushImage(built.dir, { host: a.host, ...auth }, `qa/${appName(0)}:v2`);
    check(
      "cosign sign",
      await sign(`${a.host}/qa/${appName(0)}@${extra.digest}`, keys.privateKeyPath, {
        registryAuth: { ...auth, registry: a.host },
      }),
    );
    await promoteAndWait(appName(0), extra.digest, "qa");
  }
  const beforeRss = procStatus(pid, "VmRSS");
  const beforeHeap = await heapOf(url);
  let peak = beforeRss;
  let peakHeap = beforeHeap;
  const sampler = setInterval(() => {
    const now = procStatus(pid, "VmRSS");
    if (now > peak) void heapOf(url).then((h) => (peakHeap = h));
    peak = Math.max(peak, now);
  }, 20);
  const t0 = performance.now();
  let finished = 0;
  const counted2 = async (run: Promise<[Promotion, number]>) => {
    const out = await run;
    if (++finished === Math.ceil(APPS / 2) && SNAPSHOT_DIR) process.kill(pid, "SIGUSR2");
    return out;
  };
  const results = await Promise.all([
    counted2(promoteAndWait(appName(0), extra.digest, "live")),
    ...apps.map((i) => counted2(promoteAndWait(appName(i), small[i]!, "live"))),
  ]);
  const wall = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, procStatus(pid, "VmRSS"));
  const lat = results.map(([, took]) => took);
  const slowest = results.reduce((x, y) => (y[1] > x[1] ? y : x));
  say("");
  say(`(2) ${results.length} concurrent promotions of distinct apps, qa (A) → live (B), small signed images`);
  say(`  wall ${ms(wall)}, throughput ${(results.length / (wall / 1000)).toFixed(1)} promotions/s`);
  say(
    `  request → promoted: p50 ${ms(quantile(lat, 0.5))}, p99 ${ms(quantile(lat, 0.99))}, max ${ms(Math.max(...lat))}`,
  );
  say(`  slowest: ${phasesOf(slowest[0], slowest[1])}`);
  say(`  one small promotion alone (the warm-up): ${phasesOf(warm, warmTook)}`);
  say(
    `  Ferry ran ${FROM_SOURCE ? "from src/ (type stripping)" : "compiled (tsconfig.build.json), as it ships"}`,
  );
  say(
    `  Ferry RSS: idle ${mib(idleRss)}; peak during (1) ${mib(bigRss)}; peak during (2) ${mib(peak)} (VmHWM overall ${mib(procStatus(pid, "VmHWM"))})`,
  );
  say(
    `  Ferry memory: idle ${idleHeap}; before (2) RSS ${mib(beforeRss)}, ${beforeHeap}; near the peak of (2) ${peakHeap}`,
  );
  say("  (promotion.concurrency 8, the default: one replica works on 8 app/environment pairs at once)");

  // ---- (3) The cost of evidence -------------------------------------------------------------------
  // Apps already in qa (from (2)), one promotion at a time so that nothing else competes, alternating
  // which environment goes first.
  const pairs = apps.slice(0, Math.min(20, apps.length));
  const withEvidence: number[] = [];
  const withoutEvidence: number[] = [];
  const evidenceStep: number[] = [];
  for (const [n, i] of pairs.entries()) {
    const withIt = async () => {
      const [p, took] = await promoteAndWait(appName(i), small[i]!, "live-evidence");
      withEvidence.push(took);
      evidenceStep.push(stepTime(p, "evidence"));
    };
    const without = async () => {
      withoutEvidence.push((await promoteAndWait(appName(i), small[i]!, "live-plain"))[1]);
    };
    if (n % 2 === 0) {
      await withIt();
      await without();
    } else {
      await without();
      await withIt();
    }
  }
  say("");
  say(`(3) the cost of evidence: ${pairs.length} small promotions qa (A) → B each way, one at a time`);
  say(
    `  with a verification summary: median ${ms(median(withEvidence))}; without (evidence.summary: false): median ${ms(median(withoutEvidence))}; added ${ms(median(withEvidence) - median(withoutEvidence))} per promotion`,
  );
  say(`  the evidence step itself: median ${ms(median(evidenceStep))}, max ${ms(Math.max(...evidenceStep))}`);
} finally {
  await ferry?.stop();
  await Promise.all([pa.stop(), pb.stop()]);
  await Promise.all([a.stop(), b.stop(), github.stop()]);
  await work.remove();
  await rm(build, { recursive: true, force: true });
}

/**
 * Where the time of one promotion went, from the resource's own timestamps (server clock, same host):
 * request → first step started (gates, verification in the source), each step, and the rest (the
 * wait for the client to hear of the end).
 */
function phasesOf(p: Promotion, took: number): string {
  const at = (t: string | null | undefined) => (t ? Date.parse(t) : Number.NaN);
  const created = at(p.createdAt);
  const ran = p.steps.filter((s) => s.startedAt);
  const first = Math.min(...ran.map((s) => at(s.startedAt)));
  const parts = [`request → steps ${ms(first - created)}`];
  for (const s of ran) {
    parts.push(
      `${s.name} ${ms(at(s.finishedAt) - at(s.startedAt))} (${s.attempts} attempt${s.attempts === 1 ? "" : "s"})`,
    );
  }
  parts.push(`end → client ${ms(took - (at(p.updatedAt) - created))}`);
  return `${ms(took)} = ${parts.join(", ")}`;
}

/** How long one step of a finished promotion took, from its timestamps (NaN when it did not run). */
function stepTime(p: Promotion, name: string): number {
  const s = p.steps.find((x) => x.name === name);
  return s?.startedAt && s.finishedAt ? Date.parse(s.finishedAt) - Date.parse(s.startedAt) : Number.NaN;
}

/** Distinct blobs (configs and layers) of the `.sig` and `.att` manifests of `digest` in `repo`. */
async function attachmentBlobs(reg: TestRegistry, repo: string, digest: string): Promise<number> {
  const blobs = new Set<string>();
  for (const suffix of ["sig", "att"]) {
    const res = await fetch(`${reg.url}/v2/${repo}/manifests/${digest.replace(":", "-")}.${suffix}`, {
      headers: {
        accept: MANIFEST_ACCEPT,
        authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString("base64")}`,
      },
    });
    if (!res.ok) throw new Error(`no .${suffix} manifest (${res.status})`);
    const m = (await res.json()) as { config: { digest: string }; layers: { digest: string }[] };
    blobs.add(m.config.digest);
    for (const l of m.layers) blobs.add(l.digest);
  }
  return blobs.size;
}
