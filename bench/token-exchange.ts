/**
 * Token exchange throughput and latency, beside the raw crypto limit measured in the same run.
 *
 *   npm run bench:token   (or: node bench/token-exchange.ts [exchanges] [clients] [log level] [wrk|node])
 *
 * 1. Raw: jose RS256 verify + ES256 sign per second, with the same concurrency as the clients,
 *    measured before and again after the exchanges (the ratio is to their mean: the speed of a
 *    shared machine drifts between runs and within one).
 * 2. Ferry (`ferry serve`, its own process, SQLite store, its log written to a file) on loopback, a
 *    GitHub-like RS256 issuer on loopback, and `clients` concurrent keep-alive connections each
 *    exchanging pre-signed tokens (unique jti, each sent once) for a ferry-jwt credential.
 * Prints exchanges/s, p50/p99 latency and the ratio to the raw rate (target ≥ 0.5, p99 < 20 ms); the
 * CPU per exchange of Ferry (all threads, and its event loop alone) and of the clients, which share
 * the machine's CPUs with it; and Ferry's log lines per exchange.
 *
 * The clients are `wrk` when it is on the PATH (`scripts/install-bench-deps.sh` installs it, and
 * `npm run bench:token` runs that first; this script installs nothing): one thread, a Lua script
 * (bench/token-exchange.lua) sending bodies read from a file, ~25 µs of CPU per request. Otherwise,
 * or with `node`, Node `http` clients in this process, ~140-200 µs per request taken from the CPUs
 * Ferry runs on. Ferry's CPU per exchange divides its CPU time (from /proc) by the exchanges it
 * counted itself (`ferry_token_exchanges_total`), which must all be grants; latency is wrk's (from
 * writing the request to reading the whole response) or the Node clients'.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { KeyObject, randomUUID, sign } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { compactVerify, generateKeyPair, importJWK, SignJWT } from "jose";
import { stringify } from "yaml";
import { getFreePort, waitForHttp } from "../test/support/net.ts";
import { type IssuerKey, startOidcIssuer } from "../test/support/oidc-issuer.ts";

const EXCHANGES = Number(process.argv[2] ?? 20_000);
const CLIENTS = Number(process.argv[3] ?? 64);
/** Ferry's log level: `info` (the default, as deployed: a line per request and per exchange) or e.g. `warn`. */
const LOG_LEVEL = process.argv[4] ?? "info";
const WARMUP = 1_000;
/** The raw loop's warm-up: jose's path keeps speeding up for a few thousand operations. */
const RAW_WARMUP = 5_000;
const AUD = "https://ferry.example.com";
const ROOT = new URL("..", import.meta.url).pathname;
const WRK_SCRIPT = path.join(ROOT, "bench/token-exchange.lua");
/** One wrk thread drives all the connections: a second would only take more of Ferry's CPUs. */
const WRK_THREADS = 1;

/** Whether `wrk` can be run (checked when the bench runs, never installed by it). */
function wrkAvailable(): boolean {
  return spawnSync("wrk", ["--version"], { stdio: "ignore" }).error === undefined;
}

/**
 * user + system CPU ms from /proc: of a process (`self`, all its threads), of its waited-for
 * children (`children`), or of its main thread alone (`main`: the event loop, where Ferry's
 * JavaScript runs; the other threads are libuv's pool, doing the signatures, and V8's GC helpers).
 */
function procCpuMs(pid: number | "self" | undefined, which: "self" | "children" | "main" = "self"): number {
  try {
    const file = which === "main" ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`;
    const fields = readFileSync(file, "utf8").split(") ")[1]!.split(" ");
    const at = which === "children" ? 13 : 11; // cutime, cstime / utime, stime, in USER_HZ (100) ticks
    return ((Number(fields[at]) + Number(fields[at + 1])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `total` tasks on `concurrency` workers; returns per-task latencies (ms) and the wall time. */
async function drive(total: number, concurrency: number, task: (i: number) => Promise<void>) {
  const latencies: number[] = new Array(total);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const t = performance.now();
        await task(i);
        latencies[i] = performance.now() - t;
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

async function rawRate(
  tokens: string[],
  issuerJwk: Record<string, unknown>,
): Promise<{ rate: number; cpuUsPerOp: number }> {
  const verifyKey = await importJWK(issuerJwk, "RS256");
  const { privateKey: signKey } = await generateKeyPair("ES256");
  const run = (n: number) =>
    drive(n, CLIENTS, async (i) => {
      const { payload } = await compactVerify(tokens[i % tokens.length]!, verifyKey, {
        algorithms: ["RS256"],
      });
      const claims = JSON.parse(new TextDecoder().decode(payload)) as { sub: string };
      await new SignJWT({ sub: claims.sub })
        .setProtectedHeader({ alg: "ES256", kid: "k" })
        .setIssuedAt()
        .setExpirationTime("10m")
        .sign(signKey);
    });
  await run(RAW_WARMUP);
  const cpu = selfCpuMs();
  const { seconds } = await run(EXCHANGES);
  return { rate: EXCHANGES / seconds, cpuUsPerOp: ((selfCpuMs() - cpu) * 1000) / EXCHANGES };
}

/**
 * Signs the subject tokens as the issuer's `sign` does (header `alg`, `typ`, `kid`), but with
 * node:crypto's thread pool on every CPU rather than WebCrypto: tens of thousands of RS256
 * signatures take seconds instead of a minute.
 */
async function signTokens(key: IssuerKey, payloads: Record<string, unknown>[]): Promise<string[]> {
  const signKey = KeyObject.from(key.privateKey);
  const header = Buffer.from(JSON.stringify({ alg: key.alg, typ: "JWT", kid: key.kid })).toString(
    "base64url",
  );
  const one = (payload: Record<string, unknown>) =>
    new Promise<string>((resolve, reject) => {
      const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
      sign("sha256", Buffer.from(input), signKey, (err, signature) =>
        err ? reject(err) : resolve(`${input}.${signature.toString("base64url")}`),
      );
    });
  const tokens: string[] = [];
  for (let i = 0; i < payloads.length; i += 256)
    tokens.push(...(await Promise.all(payloads.slice(i, i + 256).map(one))));
  return tokens;
}

/** The form body of one exchange. */
function exchangeBody(token: string): string {
  return new URLSearchParams({
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token: token,
    subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
    audience: "deploy-staging",
  }).toString();
}

/** What one measured phase of clients reports: answered exchanges, their wall time and latencies. */
interface ClientRun {
  answered: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU the clients used, ms. */
  cpuMs: number;
}

/** `CLIENTS` keep-alive Node http clients in this process, each token once. */
async function nodeClients(url: string, bodies: string[]): Promise<ClientRun> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const exchange = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        `${url}/v1/token`,
        {
          method: "POST",
          agent,
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks)}`));
            else resolve();
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  const cpu = selfCpuMs();
  const { latencies, seconds } = await drive(bodies.length, CLIENTS, (i) => exchange(bodies[i]!));
  const cpuMs = selfCpuMs() - cpu;
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  return {
    answered: bodies.length,
    seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    cpuMs,
  };
}

/**
 * `wrk -t1 -c CLIENTS` with bench/token-exchange.lua, each body once. Its CPU is read from this
 * process's waited-for children (wrk is the only child that exits during the run).
 */
async function wrkClients(url: string, bodies: string[], dir: string): Promise<ClientRun> {
  const file = path.join(dir, `bodies-${randomUUID()}.txt`);
  writeFileSync(file, `${bodies.join("\n")}\n`);
  const cpu = procCpuMs("self", "children");
  const args = [`-t${WRK_THREADS}`, `-c${CLIENTS}`, "-d600s", "--timeout", "10s", "-s", WRK_SCRIPT, url];
  args.push("--", file, String(WRK_THREADS));
  const wrk = spawn("wrk", args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  let interrupted = false;
  wrk.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    // wrk runs for its whole -d: once every thread has sent its bodies, interrupt it (it then prints).
    if (!interrupted && out.split("WRK_THREAD_DONE").length - 1 === WRK_THREADS) {
      interrupted = true;
      wrk.kill("SIGINT");
    }
  });
  const code = await new Promise<number | null>((resolve) => wrk.once("close", resolve));
  const cpuMs = procCpuMs("self", "children") - cpu;
  const line = out.split("\n").find((l) => l.startsWith("WRK_RESULT "));
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${code}):\n${out}`);
  const r = JSON.parse(line.slice("WRK_RESULT ".length)) as Record<string, number>;
  const errors = r.connect! + r.read! + r.write! + r.status! + r.timeout!;
  if (errors > 0) throw new Error(`wrk saw ${errors} errors (non-2xx, timeouts, socket errors): ${line}`);
  return {
    answered: r.requests!,
    seconds: r.durationUs! / 1e6,
    p50Ms: r.p50Us! / 1000,
    p99Ms: r.p99Us! / 1000,
    cpuMs,
  };
}

/** Ferry's `ferry_token_exchanges_total`, granted and refused. */
async function exchangeCounts(url: string): Promise<{ granted: number; refused: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts = { granted: 0, refused: 0 };
  for (const m of text.matchAll(
    /^ferry_token_exchanges_total\{[^}]*decision="(granted|refused)"[^}]*\} (\d+)/gm,
  ))
    counts[m[1] as "granted" | "refused"] += Number(m[2]);
  return counts;
}

/** Counts JSON log lines, in all and by `msg`. */
function logLines(text: Buffer): { total: number; byMessage: Map<string, number> } {
  const byMessage = new Map<string, number>();
  let total = 0;
  for (const line of text.toString("utf8").split("\n")) {
    if (line === "") continue;
    total++;
    const msg = String((JSON.parse(line) as { msg?: unknown }).msg);
    byMessage.set(msg, (byMessage.get(msg) ?? 0) + 1);
  }
  return { total, byMessage };
}

/** Ferry's CPU (all threads, main thread) once it has finished what it was sent (two reads 100 ms apart agree). */
async function settledCpuMs(pid: number | undefined): Promise<{ all: number; main: number }> {
  let last = procCpuMs(pid);
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const now = procCpuMs(pid);
    if (now === last) break;
    last = now;
  }
  return { all: last, main: procCpuMs(pid, "main") };
}

async function main(): Promise<void> {
  const client = (process.argv[5] ?? (wrkAvailable() ? "wrk" : "node")) as "wrk" | "node";
  if (client !== "wrk" && client !== "node") throw new Error(`unknown client ${client}: wrk or node`);
  if (client === "wrk" && !wrkAvailable())
    throw new Error("wrk is not installed: run scripts/install-bench-deps.sh, or pass `node`");
  const issuer = await startOidcIssuer();
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-bench-"));
  let ferry: ChildProcess | undefined;
  try {
    const now = Math.floor(Date.now() / 1000);
    const claims = () => ({
      jti: randomUUID(),
      sub: "repo:acme/web:ref:refs/heads/main",
      aud: AUD,
      iss: issuer.url,
      iat: now,
      nbf: now - 5,
      exp: now + 900,
      ref: "refs/heads/main",
      sha: "d6f2a7f1c7d5b3a8e6f0c4b2a9e8d7c6b5a4f3e2",
      repository: "acme/web",
      repository_id: "74",
      repository_owner: "acme",
      repository_owner_id: "65",
      run_id: "9876543210",
      run_attempt: "1",
      event_name: "push",
      actor: "octocat",
      runner_environment: "github-hosted",
      workflow_ref: "acme/web/.github/workflows/release.yml@refs/heads/main",
    });
    const total = WARMUP + EXCHANGES;
    process.stderr.write(`signing ${total} RS256 subject tokens...\n`);
    const tokens = await signTokens(issuer.keys.at(-1)!, Array.from({ length: total }, claims));

    process.stderr.write("measuring raw jose verify + sign...\n");
    const issuerJwk = issuer.keys.at(-1)!.publicJwk as Record<string, unknown>;
    const rawBefore = await rawRate(tokens, issuerJwk);

    const port = await getFreePort();
    const url = `http://127.0.0.1:${port}`;
    const configFile = path.join(dir, "ferry.yaml");
    writeFileSync(
      configFile,
      stringify({
        dev: true,
        server: { listen: `127.0.0.1:${port}`, publicUrl: url },
        store: { sqlite: "./ferry.db" },
        keys: { signing: "./signing.pem" },
        log: { level: LOG_LEVEL },
        issuers: [
          {
            name: "github",
            url: issuer.url,
            audience: AUD,
            platform: "github",
            allowInsecureHttp: true,
            rateLimit: { requests: 1_000_000, per: "1m" },
          },
        ],
        environments: [{ name: "staging" }],
        credentials: [
          {
            name: "deploy-staging",
            environment: "staging",
            type: "ferry-jwt",
            ttl: "10m",
            allow: [
              {
                issuer: "github",
                claims: { repository_id: "74", ref: "refs/heads/main", runner_environment: "github-hosted" },
              },
            ],
          },
        ],
      }),
    );
    // Ferry's log goes to a file, as it would to a collector, and is read back: lines per exchange.
    const logFile = path.join(dir, "ferry.log");
    const logFd = openSync(logFile, "w");
    ferry = spawn(process.execPath, [path.join(ROOT, "src/cli/main.ts"), "serve", "--config", configFile], {
      stdio: ["ignore", logFd, "inherit"],
    });
    closeSync(logFd);
    await waitForHttp(`${url}/readyz`, { accept: (s) => s === 200 });

    const bodies = tokens.map(exchangeBody);
    const run = (part: string[]) => (client === "wrk" ? wrkClients(url, part, dir) : nodeClients(url, part));
    process.stderr.write(`exchanging (${CLIENTS} clients, ${client})...\n`);
    await run(bodies.slice(0, WARMUP));
    await settledCpuMs(ferry.pid); // the warm-up's last requests, answered after wrk stopped counting
    const before = await exchangeCounts(url);
    const logFrom = statSync(logFile).size;
    const serverCpu = await settledCpuMs(ferry.pid);
    const measured = await run(bodies.slice(WARMUP));
    const serverCpuAfter = await settledCpuMs(ferry.pid);
    const logged = logLines(readFileSync(logFile).subarray(logFrom));
    const after = await exchangeCounts(url);
    const done = after.granted - before.granted;
    if (after.refused !== before.refused || done < measured.answered || done > EXCHANGES) {
      throw new Error(
        `Ferry counted ${done} grants and ${after.refused - before.refused} refusals for ${measured.answered} answered exchanges`,
      );
    }
    // The machine's speed drifts (shared hosts): the raw rate is measured again right after the
    // exchanges, with Ferry idle, and the ratio is taken to the mean of the two.
    process.stderr.write("measuring raw jose verify + sign again...\n");
    const rawAfter = await rawRate(tokens, issuerJwk);
    const raw = (rawBefore.rate + rawAfter.rate) / 2;
    const rawCpu = (rawBefore.cpuUsPerOp + rawAfter.cpuUsPerOp) / 2;
    const perOp = (ms: number) => ((ms * 1000) / done).toFixed(0);
    const rate = measured.answered / measured.seconds;
    const ratio = rate / raw;
    const { p50Ms: p50, p99Ms: p99 } = measured;
    const lines = [
      `token exchange bench: ${EXCHANGES} exchanges, ${CLIENTS} concurrent clients (${client}), loopback, ${availableParallelism()} CPUs, node ${process.version}, Ferry log level ${LOG_LEVEL}`,
      `  raw jose verify(RS256) + sign(ES256): ${raw.toFixed(0)} ops/s (before ${rawBefore.rate.toFixed(0)}, after ${rawAfter.rate.toFixed(0)})`,
      `  POST /v1/token (ferry-jwt):           ${rate.toFixed(0)} exchanges/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      `  ratio exchange/raw: ${ratio.toFixed(2)} (target >= 0.50) ${ratio >= 0.5 ? "ok" : "BELOW TARGET"}; p99 target < 20 ms ${p99 < 20 ? "ok" : "ABOVE TARGET"}`,
      `  CPU per operation: raw ${rawCpu.toFixed(0)} us; exchange: Ferry ${perOp(serverCpuAfter.all - serverCpu.all)} us (event loop ${perOp(serverCpuAfter.main - serverCpu.main)} us) + clients (${client}) ${((measured.cpuMs * 1000) / measured.answered).toFixed(0)} us`,
      `  Ferry log lines per exchange: ${(logged.total / done).toFixed(2)} (${[...logged.byMessage].map(([m, n]) => `"${m}" ${(n / done).toFixed(2)}`).join(", ")})`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    ferry?.kill("SIGTERM");
    if (ferry) await new Promise((resolve) => ferry!.once("exit", resolve));
    await issuer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
