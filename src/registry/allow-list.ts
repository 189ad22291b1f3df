import { FerryError } from "../common/errors.ts";

/** One configured registry (the shape of `registries[]` in ferry.yaml). */
export interface RegistrySettings {
  url: string;
  auth?: { username: string; password: string } | undefined;
  aliases?: string[] | undefined;
  tokenRealms?: string[] | undefined;
  blobRedirects?: string[] | undefined;
  insecure?: boolean | undefined;
}

/** A registry Ferry may contact, resolved from config. */
export interface RegistryEndpoint {
  /** The `host[:port]` of its URL: the registry part of image references (aliases aside). */
  readonly host: string;
  /** `scheme://host[:port]`, with no trailing slash. */
  readonly origin: string;
  readonly credentials: { username: string; password: string } | undefined;
  /** `origin + pathname` of every token realm on another origin that may receive the credentials. */
  readonly tokenRealms: ReadonlySet<string>;
  /** Origins blob downloads may be redirected to (without credentials). */
  readonly blobRedirects: ReadonlySet<string>;
}

/**
 * The registries listed in config, and nothing else: every request the registry client makes is
 * checked against this list, including token requests and redirects. Loopback registries are listed
 * like any other (tests list `http://127.0.0.1:PORT`).
 */
export class RegistryAllowList {
  readonly #byHost = new Map<string, RegistryEndpoint>();

  constructor(settings: readonly RegistrySettings[]) {
    for (const s of settings) {
      const url = new URL(s.url);
      const endpoint: RegistryEndpoint = {
        host: url.host,
        origin: url.origin,
        credentials: s.auth,
        tokenRealms: new Set((s.tokenRealms ?? []).map(realmKey)),
        blobRedirects: new Set((s.blobRedirects ?? []).map((u) => new URL(u).origin)),
      };
      for (const host of [url.host, ...(s.aliases ?? [])]) this.#byHost.set(host.toLowerCase(), endpoint);
    }
  }

  /** The endpoint for a reference's registry host; `forbidden` when it is not listed. */
  endpoint(host: string): RegistryEndpoint {
    const found = this.#byHost.get(host.toLowerCase());
    if (found === undefined) {
      throw new FerryError(
        "forbidden",
        `registry "${host}" is not listed in the config's \`registries\`; Ferry contacts no other registry`,
      );
    }
    return found;
  }

  /** Whether `host` is a listed registry. */
  has(host: string): boolean {
    return this.#byHost.has(host.toLowerCase());
  }
}

function realmKey(url: string | URL): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** Whether a bearer challenge's realm may receive `endpoint`'s credentials. */
export function isAllowedRealm(endpoint: RegistryEndpoint, realm: URL): boolean {
  return realm.origin === endpoint.origin || endpoint.tokenRealms.has(realmKey(realm));
}

/** Where a redirect may go: back to the registry itself (with auth) or to a listed blob origin (without). */
export function redirectTarget(endpoint: RegistryEndpoint, target: URL): "registry" | "storage" | undefined {
  if (target.origin === endpoint.origin) return "registry";
  if (endpoint.blobRedirects.has(target.origin)) return "storage";
  return undefined;
}
