import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { getFreePort, LOOPBACK, waitForHttp } from "./net.ts";
import { makeTempDir, runOk, startProcess } from "./proc.ts";
import { startTokenServer, type TokenServer } from "./token-server.ts";

/** How the registry authenticates clients. */
export type RegistryAuth = "none" | "htpasswd" | "token";

/** Options for {@link startRegistry}. */
export interface StartRegistryOptions {
  auth?: RegistryAuth;
  /** Users (name → password) for htpasswd or token auth; one random user is made when absent. */
  users?: Record<string, string>;
}

/** A running CNCF distribution registry; see {@link startRegistry}. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  auth: RegistryAuth;
  /** The first configured user (absent when auth is "none"). */
  username?: string;
  password?: string;
  /** All configured users. */
  users: Record<string, string>;
  /** The token server the registry trusts (auth "token" only). */
  tokenServer?: TokenServer;
  /** Filesystem storage root, for tests that inspect or corrupt stored blobs. */
  storageDir: string;
  /** Recent registry log output (level warn), for diagnosing a failed test. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `docker-registry serve` (distribution 2.8) in the foreground on 127.0.0.1 with filesystem
 * storage in a temp dir, deletes enabled, and the chosen auth; resolves once `/v2/` answers.
 * Install the binary with scripts/install-test-deps.sh.
 */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? "none";
  const users =
    opts.users ?? (auth === "none" ? {} : { "ferry-test": `pw-${randomBytes(12).toString("hex")}` });
  const [username, password] = Object.entries(users)[0] ?? [];
  const tmp = await makeTempDir("registry");
  let tokenServer: TokenServer | undefined;
  try {
    const port = await getFreePort();
    const storageDir = join(tmp.path, "storage");
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: "warn", formatter: "text", accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: true },
        // Background upload purging is useless for a short-lived registry and only adds log noise.
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr: `${LOOPBACK}:${port}`,
        // A fixed secret avoids the "no secret configured, generating a random one" warning.
        secret: randomBytes(16).toString("hex"),
        headers: { "X-Content-Type-Options": ["nosniff"] },
      },
    };
    if (auth === "htpasswd") {
      const lines: string[] = [];
      for (const [user, pass] of Object.entries(users)) {
        // distribution accepts only bcrypt entries; -i reads the password from stdin so it is not in argv.
        lines.push((await runOk("htpasswd", ["-Bin", user], { input: pass })).trim());
      }
      const htpasswdPath = join(tmp.path, "htpasswd");
      await writeFile(htpasswdPath, `${lines.join("\n")}\n`, { mode: 0o600 });
      config.auth = { htpasswd: { realm: "ferry-test-registry", path: htpasswdPath } };
    } else if (auth === "token") {
      tokenServer = await startTokenServer({ users });
      config.auth = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certPath,
        },
      };
    }
    const configPath = join(tmp.path, "config.yml");
    await writeFile(configPath, stringify(config));

    // REGISTRY_* variables override the config file in distribution: keep the caller's out.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("REGISTRY_")) env[k] = v;
    const proc = startProcess("docker-registry", ["serve", configPath], { env });
    const url = `http://${LOOPBACK}:${port}`;
    try {
      await waitForHttp(`${url}/v2/`, {
        timeoutMs: 20_000,
        abort: () => {
          const status = proc.exitStatus();
          return status && `docker-registry ${status}: ${proc.output().trim()}`;
        },
      });
    } catch (err) {
      await proc.stop();
      throw err;
    }
    const ts = tokenServer;
    return {
      host: `${LOOPBACK}:${port}`,
      url,
      auth,
      username,
      password,
      users,
      tokenServer: ts,
      storageDir,
      output: proc.output,
      async stop() {
        await proc.stop();
        await ts?.stop();
        await tmp.remove();
      },
    };
  } catch (err) {
    await tokenServer?.stop();
    await tmp.remove();
    if (err instanceof Error && /ENOENT|could not start/.test(err.message)) {
      err.message += " (is docker-registry installed? run scripts/install-test-deps.sh)";
    }
    throw err;
  }
}

/** Accept header listing every manifest type: distribution 2.8 answers 404 for an OCI manifest otherwise. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** Parses `Bearer realm="…",service="…",scope="…"` (or Basic) challenge parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([A-Za-z_]+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return { scheme, params };
}

/**
 * fetch() against a test registry as an authenticated client would: it answers the registry's 401
 * challenge with Basic credentials, or fetches a bearer token from the challenge's realm (with the
 * challenged scope), then retries once. `path` starts with `/v2/`. Manifest requests get
 * {@link MANIFEST_ACCEPT} unless an Accept header is given. A request body must be re-sendable
 * (string or buffer), since it may go out twice.
 */
export async function registryFetch(
  registry: Pick<TestRegistry, "url" | "username" | "password">,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (path.includes("/manifests/") && !headers.has("accept")) headers.set("accept", MANIFEST_ACCEPT);
  const first = await fetch(`${registry.url}${path}`, { ...init, headers });
  const challenge = first.headers.get("www-authenticate");
  if (first.status !== 401 || !challenge || registry.username === undefined) return first;
  await first.body?.cancel();
  const basic = `Basic ${Buffer.from(`${registry.username}:${registry.password ?? ""}`).toString("base64")}`;
  const { scheme, params } = parseChallenge(challenge);
  if (scheme === "basic") {
    headers.set("authorization", basic);
  } else if (scheme === "bearer" && params.realm) {
    const tokenUrl = new URL(params.realm);
    if (params.service) tokenUrl.searchParams.set("service", params.service);
    if (params.scope) tokenUrl.searchParams.set("scope", params.scope);
    const res = await fetch(tokenUrl, { headers: { authorization: basic } });
    if (!res.ok)
      throw new Error(`token request to ${tokenUrl} failed: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    headers.set("authorization", `Bearer ${body.token ?? body.access_token}`);
  } else {
    return new Response(null, { status: 401, headers: first.headers });
  }
  return fetch(`${registry.url}${path}`, { ...init, headers });
}
