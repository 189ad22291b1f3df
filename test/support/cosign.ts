import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { delimiter, join, resolve } from "node:path";
import { getFreePort } from "./net.ts";
import { makeTempDir, type RunResult, run } from "./proc.ts";

/** Credentials written to the docker config.json cosign reads. */
export interface RegistryAuth {
  username: string;
  password: string;
  /** Registry host (`127.0.0.1:PORT`); defaults to the host part of the image reference. */
  registry?: string;
}

/** Options for {@link runCosign}. */
export interface RunCosignOptions {
  /** Extra environment (wins over the defaults, except that the proxy settings always apply). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Sets COSIGN_PASSWORD (the password of the key being used or generated). */
  password?: string;
  registryAuth?: RegistryAuth;
  /** Kill cosign after this long (default 90 s). */
  timeoutMs?: number;
}

/**
 * Path of the cosign binary: `FERRY_COSIGN`, else the first `cosign` on PATH.
 * Throws with the way to get one when there is none.
 */
export function findCosign(): string {
  const fromEnv = process.env.FERRY_COSIGN;
  if (fromEnv) return fromEnv;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "cosign");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  throw new Error("cosign not found (set FERRY_COSIGN or put it on PATH): run scripts/install-test-deps.sh");
}

let deadProxy: Promise<string> | undefined;

/**
 * A proxy URL on a loopback port that nothing listens on (a port was bound and released), so any
 * attempt by cosign to reach the internet (Rekor, Fulcio, TUF) fails at once instead of hanging.
 */
function deadProxyUrl(): Promise<string> {
  deadProxy ??= getFreePort().then((port) => `http://127.0.0.1:${port}`);
  return deadProxy;
}

/** The registry host of an image reference such as `127.0.0.1:5000/team/app@sha256:…`. */
function registryOf(imageRef: string): string {
  const slash = imageRef.indexOf("/");
  return slash < 0 ? imageRef : imageRef.slice(0, slash);
}

/**
 * Runs cosign offline against a local registry: a dead proxy for everything but 127.0.0.1/localhost,
 * HOME and DOCKER_CONFIG in a fresh temp dir (with a config.json holding `registryAuth`, if given),
 * COSIGN_YES so nothing prompts, and COSIGN_EXPERIMENTAL removed. Never throws for a non-zero exit.
 */
export async function runCosign(args: readonly string[], opts: RunCosignOptions = {}): Promise<RunResult> {
  const cosign = findCosign();
  const proxy = await deadProxyUrl();
  const tmp = await makeTempDir("cosign");
  try {
    const dockerConfig = join(tmp.path, "docker");
    await mkdir(dockerConfig);
    const auths: Record<string, { auth: string }> = {};
    if (opts.registryAuth) {
      const host = opts.registryAuth.registry ?? registryOf(args.at(-1) ?? "");
      const { username, password } = opts.registryAuth;
      auths[host] = { auth: Buffer.from(`${username}:${password}`).toString("base64") };
    }
    await writeFile(join(dockerConfig, "config.json"), JSON.stringify({ auths }), { mode: 0o600 });

    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    delete env.COSIGN_EXPERIMENTAL;
    Object.assign(env, {
      HOME: tmp.path,
      DOCKER_CONFIG: dockerConfig,
      COSIGN_YES: "true",
      HTTPS_PROXY: proxy,
      HTTP_PROXY: proxy,
      https_proxy: proxy,
      http_proxy: proxy,
      NO_PROXY: "127.0.0.1,localhost",
      no_proxy: "127.0.0.1,localhost",
    });
    if (opts.password !== undefined) env.COSIGN_PASSWORD = opts.password;
    else env.COSIGN_PASSWORD ??= "";
    return await run(cosign, args, { cwd: opts.cwd ?? tmp.path, env, timeoutMs: opts.timeoutMs ?? 90_000 });
  } finally {
    await tmp.remove();
  }
}

/** A generated cosign key pair. The password lives only in memory and in this object. */
export interface CosignKeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  password: string;
}

/** Key path (resolved) → password, so sign/attest can unlock keys made by {@link generateKeyPair}. */
const keyPasswords = new Map<string, string>();

function passwordFor(keyPath: string, explicit: string | undefined): string | undefined {
  return explicit ?? keyPasswords.get(resolve(keyPath));
}

/** `cosign generate-key-pair` into `dir` (cosign.key / cosign.pub) with a random password. */
export async function generateKeyPair(dir: string): Promise<CosignKeyPair> {
  await mkdir(dir, { recursive: true });
  const password = randomBytes(18).toString("base64url");
  const res = await runCosign(["generate-key-pair", "--output-key-prefix", "cosign"], { cwd: dir, password });
  if (res.code !== 0) {
    throw new Error(`cosign generate-key-pair failed (${res.code}): ${res.stderr.trim()}`);
  }
  const privateKeyPath = resolve(dir, "cosign.key");
  keyPasswords.set(privateKeyPath, password);
  return { privateKeyPath, publicKeyPath: resolve(dir, "cosign.pub"), password };
}

/** Options for the signing helpers. */
export interface SignOptions {
  registryAuth?: RegistryAuth;
  /** The key's password; defaults to the one {@link generateKeyPair} made for that key. */
  password?: string;
  /** Extra cosign flags, added before the image reference. */
  extraArgs?: string[];
}

// Plain-http loopback registry: cosign (go-containerregistry) would otherwise insist on https.
const REGISTRY_FLAGS = ["--allow-http-registry", "--allow-insecure-registry"];

/** `cosign sign --key` without a transparency log upload: writes the legacy `.sig` tag. */
export function sign(imageRef: string, keyPath: string, opts: SignOptions = {}): Promise<RunResult> {
  return runCosign(
    ["sign", "--key", keyPath, "--tlog-upload=false", ...REGISTRY_FLAGS, ...(opts.extraArgs ?? []), imageRef],
    { registryAuth: opts.registryAuth, password: passwordFor(keyPath, opts.password) },
  );
}

/** Options for the verification helpers. */
export interface VerifyOptions {
  registryAuth?: RegistryAuth;
  extraArgs?: string[];
}

/** `cosign verify --key` ignoring the transparency log (nothing was uploaded to one). */
export function verify(
  imageRef: string,
  publicKeyPath: string,
  opts: VerifyOptions = {},
): Promise<RunResult> {
  return runCosign(
    [
      "verify",
      "--key",
      publicKeyPath,
      "--insecure-ignore-tlog=true",
      ...REGISTRY_FLAGS,
      ...(opts.extraArgs ?? []),
      imageRef,
    ],
    { registryAuth: opts.registryAuth },
  );
}

/**
 * `cosign attest --key` with the predicate file and type, no tlog upload. With `newBundleFormat`,
 * cosign writes a Sigstore bundle (as an OCI referrer, or the tag-schema fallback index on registries
 * without the referrers API) instead of the legacy `.att` tag.
 */
export function attest(
  imageRef: string,
  keyPath: string,
  predicatePath: string,
  type: string,
  opts: SignOptions & { newBundleFormat?: boolean } = {},
): Promise<RunResult> {
  return runCosign(
    [
      "attest",
      "--key",
      keyPath,
      "--predicate",
      predicatePath,
      "--type",
      type,
      "--tlog-upload=false",
      ...(opts.newBundleFormat ? ["--new-bundle-format"] : []),
      ...REGISTRY_FLAGS,
      ...(opts.extraArgs ?? []),
      imageRef,
    ],
    { registryAuth: opts.registryAuth, password: passwordFor(keyPath, opts.password) },
  );
}

/**
 * An empty Sigstore TrustedRoot: with `--new-bundle-format`, cosign otherwise refreshes the public-good
 * root over TUF (which fails offline) even for key-based verification that needs none of it.
 */
export const EMPTY_TRUSTED_ROOT = {
  mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

/**
 * `cosign verify-attestation --key --type`, ignoring the transparency log. With `newBundleFormat`
 * it passes `--trusted-root` (`trustedRootPath`, or {@link EMPTY_TRUSTED_ROOT} written to a temp file).
 */
export async function verifyAttestation(
  imageRef: string,
  publicKeyPath: string,
  type: string,
  opts: VerifyOptions & { newBundleFormat?: boolean; trustedRootPath?: string } = {},
): Promise<RunResult> {
  const tmp = opts.newBundleFormat && !opts.trustedRootPath ? await makeTempDir("cosign-root") : undefined;
  try {
    let trustedRoot = opts.trustedRootPath;
    if (tmp) {
      trustedRoot = join(tmp.path, "trusted_root.json");
      await writeFile(trustedRoot, JSON.stringify(EMPTY_TRUSTED_ROOT));
    }
    return await runCosign(
      [
        "verify-attestation",
        "--key",
        publicKeyPath,
        "--type",
        type,
        "--insecure-ignore-tlog=true",
        ...(opts.newBundleFormat ? ["--new-bundle-format"] : []),
        ...(trustedRoot ? ["--trusted-root", trustedRoot] : []),
        ...REGISTRY_FLAGS,
        ...(opts.extraArgs ?? []),
        imageRef,
      ],
      { registryAuth: opts.registryAuth },
    );
  } finally {
    await tmp?.remove();
  }
}
