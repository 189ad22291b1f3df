/**
 * Token exchange throughput and latency, beside the raw crypto limit measured in the same run.
 *
 *   npm run bench:token            (or: node bench/token-exchange.ts [exchanges] [clients] [log level])
 *
 * 1. Raw: jose RS256 verify + ES256 sign per second, with the same concurrency as the clients.
 * 2. Ferry (`ferry serve`, its own process, SQLite store) on loopback, a GitHub-like RS256 issuer
 *    on loopback, and `clients` concurrent keep-alive clients each exchanging pre-signed tokens
 *    (unique jti) for a ferry-jwt credential.
 * Prints exchanges/s, p50/p99 latency and the ratio to the raw rate (target ≥ 0.5, p99 < 20 ms).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { compactVerify, generateKeyPair, importJWK, SignJWT } from "jose";
import { stringify } from "yaml";
import { getFreePort, waitForHttp } from "../test/support/net.ts";
import { startOidcIssuer } from "../test/support/oidc-issuer.ts";

const EXCHANGES = Number(process.argv[2] ?? 10_000);
const CLIENTS = Number(process.argv[3] ?? 64);
/** Ferry's log level: `info` (the default, as deployed: a line per request and per exchange) or e.g. `warn`. */
const LOG_LEVEL = process.argv[4] ?? "info";
const WARMUP = 1_000;
const AUD = "https://ferry.example.com";
const ROOT = new URL("..", import.meta.url).pathname;

/** CPU time (user + system, all threads) of a process in ms, from /proc; undefined off Linux. */
function processCpuMs(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
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
  await run(WARMUP);
  const cpu = selfCpuMs();
  const { seconds } = await run(EXCHANGES);
  return { rate: EXCHANGES / seconds, cpuUsPerOp: ((selfCpuMs() - cpu) * 1000) / EXCHANGES };
}

async function main(): Promise<void> {
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
    const tokens = await Promise.all(Array.from({ length: total }, () => issuer.sign(claims())));

    process.stderr.write("measuring raw jose verify + sign...\n");
    const { rate: raw, cpuUsPerOp: rawCpu } = await rawRate(
      tokens,
      issuer.keys.at(-1)!.publicJwk as Record<string, unknown>,
    );

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
    ferry = spawn(process.execPath, [path.join(ROOT, "src/cli/main.ts"), "serve", "--config", configFile], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    await waitForHttp(`${url}/readyz`, { accept: (s) => s === 200 });

    const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
    const exchange = (token: string) =>
      new Promise<void>((resolve, reject) => {
        const body = new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
          subject_token: token,
          subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
          audience: "deploy-staging",
        }).toString();
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
              if (res.statusCode !== 200)
                reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks)}`));
              else resolve();
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      });

    process.stderr.write(`exchanging (${CLIENTS} clients)...\n`);
    await drive(WARMUP, CLIENTS, (i) => exchange(tokens[i]!));
    const serverCpu = processCpuMs(ferry.pid);
    const clientCpu = selfCpuMs();
    const { latencies, seconds } = await drive(EXCHANGES, CLIENTS, (i) => exchange(tokens[WARMUP + i]!));
    const serverUs =
      (((processCpuMs(ferry.pid) ?? Number.NaN) - (serverCpu ?? Number.NaN)) * 1000) / EXCHANGES;
    const clientUs = ((selfCpuMs() - clientCpu) * 1000) / EXCHANGES;
    agent.destroy();
    const sorted = latencies.sort((a, b) => a - b);
    const rate = EXCHANGES / seconds;
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const ratio = rate / raw;
    const lines = [
      `token exchange bench: ${EXCHANGES} exchanges, ${CLIENTS} concurrent clients, loopback, ${availableParallelism()} CPUs, node ${process.version}, Ferry log level ${LOG_LEVEL}`,
      `  raw jose verify(RS256) + sign(ES256): ${raw.toFixed(0)} ops/s`,
      `  POST /v1/token (ferry-jwt):           ${rate.toFixed(0)} exchanges/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      `  ratio exchange/raw: ${ratio.toFixed(2)} (target >= 0.50) ${ratio >= 0.5 ? "ok" : "BELOW TARGET"}; p99 target < 20 ms ${p99 < 20 ? "ok" : "ABOVE TARGET"}`,
      `  CPU per operation: raw ${rawCpu.toFixed(0)} us; exchange: Ferry ${serverUs.toFixed(0)} us + clients ${clientUs.toFixed(0)} us`,
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
