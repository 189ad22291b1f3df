import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import { isAllowedRealm, type RegistryEndpoint } from "./allow-list.ts";
import { parseChallenges } from "./challenge.ts";
import { exchange, type HttpPolicy } from "./http.ts";

/** The actions a token scope can grant on a repository. */
export type RepositoryAction = "pull" | "push" | "delete";

/** A token scope for a repository, e.g. `repository:team/app:pull,push`. */
export function repositoryScope(repository: string, actions: RepositoryAction[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

// The token server's answer (distribution token spec; `access_token` is the OAuth2 spelling).
const tokenResponse = z
  .looseObject({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().int().positive().optional(),
  })
  .refine((t) => t.token !== undefined || t.access_token !== undefined, "no token in the answer");

// Tokens live at least this long by the spec when the server does not say.
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_TOKEN_BYTES = 64 * 1024;

type Scheme = { kind: "basic" } | { kind: "bearer"; realm: URL; service: string | undefined };

/**
 * Authentication against one registry: anonymous until the registry challenges, then Basic or the
 * bearer token flow, as the challenge says. Bearer tokens are requested for exactly the scopes an
 * operation needs (plus any the challenge names) and cached per scope set until shortly before they
 * expire. Credentials go only to the registry's own origin and to token realms the config lists.
 * Tokens and passwords are never logged or put in error messages.
 */
export class RegistryAuthenticator {
  readonly #endpoint: RegistryEndpoint;
  readonly #policy: HttpPolicy;
  #scheme: Scheme | undefined;
  readonly #tokens = new Map<string, { header: string; expiresAt: number }>();
  readonly #pending = new Map<string, Promise<string>>();

  /** Token expiry is timed by `policy.clock`. */
  constructor(endpoint: RegistryEndpoint, policy: HttpPolicy) {
    this.#endpoint = endpoint;
    this.#policy = policy;
  }

  /** The Authorization header for a request needing `scopes`; undefined while none is known to be needed. */
  async authorization(scopes: readonly string[]): Promise<string | undefined> {
    const scheme = this.#scheme;
    if (scheme === undefined) return undefined;
    if (scheme.kind === "basic") return this.#basic();
    return this.#bearer(scheme, scopes);
  }

  /**
   * Learns from a 401 answer. Returns true when the request should be sent again (now with
   * credentials or a token), false when that cannot help (no credentials, or they were just refused).
   */
  async challenged(headers: Headers, scopes: readonly string[], sent: string | undefined): Promise<boolean> {
    const challenges = parseChallenges(headers.get("www-authenticate") ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) {
      const realmText = bearer.params.realm;
      let realm: URL;
      try {
        realm = new URL(realmText ?? "");
      } catch {
        throw new FerryError(
          "upstream_invalid",
          `registry ${this.#endpoint.host} sent a bearer challenge without a valid realm`,
        );
      }
      if (!isAllowedRealm(this.#endpoint, realm)) {
        throw new FerryError(
          "forbidden",
          `registry ${this.#endpoint.host} asks for tokens from ${realm.origin}${realm.pathname}, which is not listed in its \`tokenRealms\`; Ferry sends credentials nowhere else`,
        );
      }
      const wanted = [...scopes, ...(bearer.params.scope ?? "").split(" ").filter((s) => s !== "")];
      if (sent?.startsWith("Bearer ")) {
        // The token we sent was refused (expired early, revoked, or short of a scope): forget it and
        // get a fresh one. The transport answers one challenge per request, so this cannot loop.
        for (const [key, token] of this.#tokens) if (token.header === sent) this.#tokens.delete(key);
      }
      this.#scheme = { kind: "bearer", realm, service: bearer.params.service };
      await this.#bearer(this.#scheme, wanted, scopes);
      return true;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (this.#endpoint.credentials === undefined || sent?.startsWith("Basic ")) return false;
      this.#scheme = { kind: "basic" };
      return true;
    }
    return false;
  }

  #basic(): string | undefined {
    const creds = this.#endpoint.credentials;
    if (creds === undefined) return undefined;
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
  }

  async #bearer(
    scheme: Scheme & { kind: "bearer" },
    wanted: readonly string[],
    cacheAs = wanted,
  ): Promise<string> {
    const key = scopeKey(cacheAs);
    const cached = this.#covering(cacheAs);
    if (cached !== undefined) return cached;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#requestToken(scheme, wanted).then(
        ({ header, lifetimeMs }) => {
          // Renew a little early, so a token never expires between our check and the registry's.
          this.#tokens.set(key, {
            header,
            expiresAt: this.#policy.clock.now() + lifetimeMs - Math.min(30_000, lifetimeMs / 10),
          });
          this.#pending.delete(key);
          return header;
        },
        (err: unknown) => {
          this.#pending.delete(key);
          throw err;
        },
      );
      this.#pending.set(key, pending);
    }
    return pending;
  }

  // A live token granted for a superset of the scopes serves too (a mount token covers later pushes).
  #covering(scopes: readonly string[]): string | undefined {
    const now = this.#policy.clock.now();
    const exact = this.#tokens.get(scopeKey(scopes));
    if (exact && exact.expiresAt > now) return exact.header;
    const needed = scopeActions(scopes);
    for (const [key, token] of this.#tokens) {
      if (token.expiresAt <= now) {
        this.#tokens.delete(key);
        continue;
      }
      const granted = scopeActions(key.split(" "));
      const covers = [...needed].every(([resource, actions]) =>
        [...actions].every((a) => granted.get(resource)?.has(a)),
      );
      if (covers) return token.header;
    }
    return undefined;
  }

  async #requestToken(
    scheme: Scheme & { kind: "bearer" },
    scopes: readonly string[],
  ): Promise<{ header: string; lifetimeMs: number }> {
    const url = new URL(scheme.realm);
    if (scheme.service !== undefined) url.searchParams.set("service", scheme.service);
    for (const scope of new Set(scopes)) url.searchParams.append("scope", scope);
    const headers = new Headers({ accept: "application/json" });
    const basic = this.#basic();
    if (basic !== undefined) headers.set("authorization", basic);
    const where = `token for registry ${this.#endpoint.host}`;
    const res = await exchange(url, { method: "GET", headers, where }, this.#policy);
    if (res.status !== 200) {
      await res.discard();
      const denied = res.status === 401 || res.status === 403;
      throw new FerryError(
        denied ? "upstream_denied" : "upstream_failed",
        denied
          ? `${where}: the token server refused the configured credentials (HTTP ${res.status})`
          : `${where}: the token server answered HTTP ${res.status}`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(await res.bytes(MAX_TOKEN_BYTES)));
    } catch (err) {
      throw new FerryError("upstream_invalid", `${where}: the token server's answer is not JSON`, {
        cause: err,
      });
    }
    const parsed = tokenResponse.safeParse(body);
    if (!parsed.success) {
      throw new FerryError("upstream_invalid", `${where}: the token server's answer has no token`);
    }
    const token = parsed.data.token ?? parsed.data.access_token!;
    return {
      header: `Bearer ${token}`,
      lifetimeMs: (parsed.data.expires_in ?? DEFAULT_TOKEN_SECONDS) * 1000,
    };
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(" ");
}

// `repository:a/b:pull,push` → {"repository:a/b" → {pull, push}}; the name may itself hold colons.
function scopeActions(scopes: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const last = scope.lastIndexOf(":");
    if (last <= 0) continue;
    const resource = scope.slice(0, last);
    const actions = out.get(resource) ?? new Set<string>();
    for (const a of scope.slice(last + 1).split(",")) if (a !== "") actions.add(a);
    out.set(resource, actions);
  }
  return out;
}
