// Registry copy benchmark: requests per copy beside the minimum needed, and the time of a copy of
// an image with a 64 MiB layer beside `skopeo copy` of the same image, in the same run.
//
//   npm run bench:registry        (or: npx node bench/registry-copy.ts; Node 24 runs the TypeScript)
//
// Two docker-registry 2.8 instances with htpasswd auth on loopback; request counts go through
// counting proxies, timings go straight to the registries. Not part of the test suite.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryClient } from "../src/registry/client.ts";
import { copyArtifact } from "../src/registry/copy.ts";
import { type FaultProxy, startFaultProxy } from "../test/support/fault-proxy.ts";
import { run } from "../test/support/proc.ts";
import { startRegistry, type TestRegistry } from "../test/support/registry.ts";
import { pushSignedImage } from "../test/support/signed-image.ts";

const LAYER_BYTES = 64 * 1024 * 1024;
const ROUNDS = 5;

const work = await mkdtemp(join(tmpdir(), "ferry-bench-registry-"));
const [a, b] = await Promise.all([startRegistry({ auth: "htpasswd" }), startRegistry({ auth: "htpasswd" })]);
const [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
const creds = (reg: TestRegistry) => ({ username: reg.username!, password: reg.password! });

try {
  process.stdout.write(`building and signing an image with one ${LAYER_BYTES / 1024 / 1024} MiB layer…\n`);
  const signed = await pushSignedImage(a, "bench/app", work, { layerSize: LAYER_BYTES });
  const digest = signed.digest;
  const manifest = signed.image.manifests[0]!;
  const imageBlobs = 1 + manifest.layerDigests.length;

  // ---- Requests per copy -------------------------------------------------------------------------
  const counted = new RegistryClient({
    registries: [
      { url: pa.url, auth: creds(a) },
      { url: pb.url, auth: creds(b) },
    ],
  });
  const tally = (proxy: FaultProxy) => {
    const byKind = new Map<string, number>();
    for (const r of proxy.requests) {
      const kind = `${r.method} ${r.path
        .replace(/^\/v2\/[^?]*?\/(manifests|blobs|tags|referrers)\/.*$/, "$1")
        .replace(/^\/v2\/[^?]*?\/blobs\/uploads\/.*$/, "uploads")}${r.status === 401 ? " (401)" : ""}`;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    }
    return [...byKind].map(([k, n]) => `${k} ×${n}`).join(", ");
  };
  const countCopy = async (
    label: string,
    dest: { proxy: FaultProxy; repo: string },
    attachments: boolean,
  ) => {
    pa.clearRequests();
    pb.clearRequests();
    const result = await copyArtifact(
      counted.repository({ registry: pa.host, repository: "bench/app" }),
      digest,
      counted.repository({ registry: dest.proxy.host, repository: dest.repo }),
      { attachments },
    );
    const total = pa.count() + (dest.proxy === pb ? pb.count() : 0);
    process.stdout.write(`  ${label}: ${total} requests\n    source: ${tally(pa)}\n`);
    if (dest.proxy === pb) process.stdout.write(`    destination: ${tally(pb)}\n`);
    return { total, result };
  };

  // The fewest requests that can do each copy on a registry without the referrers API, given a
  // client that has not talked to the registry before (one 401 challenge per registry):
  //   image only:  GET manifest + PUT manifest, and per blob either 1 mount or GET + POST + PUT.
  //   attachments: 1 tag listing; per attachment manifest GET + PUT (+ its blobs as above);
  //                the referrers fallback index: 1 GET at the source, 1 GET + 1 PUT at the destination.
  const attachmentManifests = 3; // .sig, .att, and the bundle referrer
  const attachmentBlobs = 6; // their configs and layers (distinct by digest)
  const minimum = (mount: boolean, attachments: boolean, registries: number) => {
    const perBlob = mount ? 1 : 3;
    const image = 2 + imageBlobs * perBlob;
    const extra = attachments ? 1 + attachmentManifests * 2 + attachmentBlobs * perBlob + 3 : 0;
    return registries + image + extra;
  };

  process.stdout.write("\nrequests per copy (first copy into an empty repository):\n");
  const rows: [string, number, number][] = [];
  const within = await countCopy(
    "within one registry, with attachments",
    { proxy: pa, repo: "count/within" },
    true,
  );
  rows.push(["within one registry (mounts), with attachments", within.total, minimum(true, true, 1)]);
  const across = await countCopy(
    "between registries, with attachments",
    { proxy: pb, repo: "count/across" },
    true,
  );
  rows.push(["between registries (streamed), with attachments", across.total, minimum(false, true, 2)]);
  const bare = await countCopy("between registries, image only", { proxy: pb, repo: "count/bare" }, false);
  rows.push(["between registries (streamed), image only", bare.total, minimum(false, false, 2)]);
  const again = await countCopy(
    "between registries, again (all present)",
    { proxy: pb, repo: "count/across" },
    true,
  );
  rows.push(["between registries, repeated (nothing to move)", again.total, 0]);

  // skopeo through the same proxies, for the same image only.
  pa.clearRequests();
  pb.clearRequests();
  const authFile = join(work, "auth.json");
  await writeFile(authFile, '{"auths":{}}');
  const skopeoEnv = {
    ...process.env,
    REGISTRY_AUTH_FILE: authFile,
    NO_PROXY: "127.0.0.1",
    no_proxy: "127.0.0.1",
  };
  const skopeo = (src: string, srcReg: TestRegistry, dst: string, dstReg: TestRegistry) =>
    run(
      "skopeo",
      [
        "copy",
        "--insecure-policy",
        "--preserve-digests",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        `${srcReg.username}:${srcReg.password}`,
        "--dest-creds",
        `${dstReg.username}:${dstReg.password}`,
        `docker://${src}`,
        `docker://${dst}`,
      ],
      { env: skopeoEnv, timeoutMs: 300_000 },
    );
  const viaProxy = await skopeo(`${pa.host}/bench/app@${digest}`, a, `${pb.host}/count/skopeo:v1`, b);
  if (viaProxy.code !== 0) throw new Error(`skopeo copy failed: ${viaProxy.stderr}`);
  const skopeoRequests = pa.count() + pb.count();
  process.stdout.write(`  skopeo copy, between registries, image only: ${skopeoRequests} requests\n`);
  process.stdout.write(`    source: ${tally(pa)}\n    destination: ${tally(pb)}\n`);

  process.stdout.write("\n| copy | Ferry requests | minimum | ratio |\n| --- | ---: | ---: | ---: |\n");
  for (const [label, n, min] of rows) {
    process.stdout.write(`| ${label} | ${n} | ${min || "–"} | ${min ? (n / min).toFixed(2) : "–"} |\n`);
  }
  process.stdout.write(
    `| skopeo copy, between registries, image only | ${skopeoRequests} | ${minimum(false, false, 2)} | ${(skopeoRequests / minimum(false, false, 2)).toFixed(2)} |\n`,
  );

  // ---- Time of a copy of the 64 MiB image --------------------------------------------------------
  const timeIt = async (fn: () => Promise<void>) => {
    const start = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const times = { ferryImage: [] as number[], ferryFull: [] as number[], skopeo: [] as number[] };
  const within2 = { ferry: [] as number[], ferryImage: [] as number[], skopeo: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    // A fresh destination registry per round, with skopeo first into it: skopeo remembers where it
    // has seen blobs (its blob-info cache) and would mount them from an earlier round's repository.
    const fresh = await startRegistry({ auth: "htpasswd" });
    try {
      const direct = new RegistryClient({
        registries: [
          { url: a.url, auth: creds(a) },
          { url: fresh.url, auth: creds(fresh) },
        ],
      });
      const ferryCopy = (to: RegistryClient, host: string, repository: string, attachments: boolean) => () =>
        copyArtifact(
          to.repository({ registry: a.host, repository: "bench/app" }),
          digest,
          to.repository({ registry: host, repository }),
          { attachments },
        ).then(() => undefined);
      times.skopeo.push(
        await timeIt(async () => {
          const res = await skopeo(`${a.host}/bench/app@${digest}`, a, `${fresh.host}/time/skopeo:v1`, fresh);
          if (res.code !== 0) throw new Error(`skopeo copy failed: ${res.stderr}`);
        }),
      );
      times.ferryImage.push(await timeIt(ferryCopy(direct, fresh.host, "time/image", false)));
      times.ferryFull.push(await timeIt(ferryCopy(direct, fresh.host, "time/full", true)));
      within2.skopeo.push(
        await timeIt(async () => {
          const res = await skopeo(
            `${a.host}/bench/app@${digest}`,
            a,
            `${a.host}/time/wskopeo${round}:v1`,
            a,
          );
          if (res.code !== 0) throw new Error(`skopeo copy failed: ${res.stderr}`);
        }),
      );
      within2.ferryImage.push(await timeIt(ferryCopy(direct, a.host, `time/wimage${round}`, false)));
      within2.ferry.push(await timeIt(ferryCopy(direct, a.host, `time/wferry${round}`, true)));
    } finally {
      await fresh.stop();
    }
  }
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const sk = median(times.skopeo);
  const fi = median(times.ferryImage);
  const ff = median(times.ferryFull);
  process.stdout.write(
    `\ntime of a copy of an image with a 64 MiB layer (median of ${ROUNDS}, loopback, htpasswd auth):\n` +
      "| copy | time | ratio to skopeo |\n| --- | ---: | ---: |\n" +
      `| skopeo copy, between registries (image only; includes process start) | ${ms(sk)} | 1.00 |\n` +
      `| Ferry copy, between registries, image only | ${ms(fi)} | ${(fi / sk).toFixed(2)} |\n` +
      `| Ferry copy, between registries, with signatures and attestations | ${ms(ff)} | ${(ff / sk).toFixed(2)} |\n` +
      `| skopeo copy, within one registry (image only) | ${ms(median(within2.skopeo))} | 1.00 |\n` +
      `| Ferry copy, within one registry (mounts), image only | ${ms(median(within2.ferryImage))} | ${(median(within2.ferryImage) / median(within2.skopeo)).toFixed(2)} |\n` +
      `| Ferry copy, within one registry (mounts), with attachments | ${ms(median(within2.ferry))} | ${(median(within2.ferry) / median(within2.skopeo)).toFixed(2)} |\n` +
      `\nall rounds (ms): skopeo ${times.skopeo.map((x) => x.toFixed(0)).join(", ")}; ` +
      `ferry image ${times.ferryImage.map((x) => x.toFixed(0)).join(", ")}; ` +
      `ferry full ${times.ferryFull.map((x) => x.toFixed(0)).join(", ")}\n`,
  );
} finally {
  await Promise.all([pa.stop(), pb.stop()]);
  await Promise.all([a.stop(), b.stop()]);
  await rm(work, { recursive: true, force: true });
}
