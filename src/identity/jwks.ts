import type { KeyObject } from "node:crypto";
import { z } from "zod";
import { type Clock, systemClock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import { IdentityError } from "./errors.ts";
import { FetchError, type JsonFetcher } from "./http-fetch.ts";
import { publicKeyFromJwk } from "./jws.ts";

/** A verification key for a token's signature. */
export type VerificationKey = KeyObject;

/** Where an issuer's verification keys come from (its JWKS over HTTP, or Ferry's own key set). */
export interface KeySource {
  /**
   * The key for a token's `kid` and `alg`. Throws {@link IdentityError} `key_unknown` when there is
   * none, `issuer_unavailable` when the keys cannot be had.
   */
  key(kid: string | undefined, alg: string): Promise<VerificationKey>;
}

/** Tuning of a {@link RemoteJwks}; the defaults are in {@link JWKS_DEFAULTS}. */
export interface JwksTiming {
  /** How long a fetched JWKS is used before it is fetched again. */
  ttlMs: number;
  /** After a fetch (or a failed one), how long before a `kid` miss may cause another fetch. */
  cooldownMs: number;
  /** How long a discovery document's `jwks_uri` is kept. */
  discoveryTtlMs: number;
  /** Largest discovery document or JWKS read, in bytes. */
  maxBytes: number;
  /** Deadline of one fetch. */
  timeoutMs: number;
}

/** Default cache timing: documented in docs/architecture.md (Caches). */
export const JWKS_DEFAULTS: JwksTiming = {
  ttlMs: 10 * 60_000,
  cooldownMs: 30_000,
  discoveryTtlMs: 60 * 60_000,
  maxBytes: 64 * 1024,
  timeoutMs: 5_000,
};

/** What a {@link RemoteJwks} needs to know about its issuer. */
export interface RemoteJwksIssuer {
  /** The issuer's name in the config: what log lines call it (see docs/architecture.md, Log fields). */
  name?: string | undefined;
  url: string;
  jwksUri?: string | undefined;
  allowInsecureHttp: boolean;
}

const jwkSchema = z.looseObject({
  kty: z.string(),
  kid: z.string().optional(),
  use: z.string().optional(),
  alg: z.string().optional(),
  crv: z.string().optional(),
  key_ops: z.array(z.string()).optional(),
});
const jwksSchema = z.looseObject({ keys: z.array(z.unknown()).max(100) });
const discoverySchema = z.looseObject({ issuer: z.string(), jwks_uri: z.string() });

type Jwk = z.infer<typeof jwkSchema>;

interface Entry {
  keys: Jwk[];
  fetchedAt: number;
  imported: Map<string, VerificationKey>;
}

const CURVES: Record<string, [string, string]> = {
  ES256: ["EC", "P-256"],
  ES384: ["EC", "P-384"],
  ES512: ["EC", "P-521"],
  EdDSA: ["OKP", "Ed25519"],
};

/** Whether a JWK can verify a signature made with `alg` (type, curve, `use`, `alg`, `key_ops`). */
export function keyFits(jwk: Jwk, alg: string): boolean {
  if (jwk.use !== undefined && jwk.use !== "sig") return false;
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes("verify")) return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if ("d" in jwk) return false; // a private key in a JWKS is a publishing mistake; never use it
  if (/^(RS|PS)(256|384|512)$/.test(alg)) return jwk.kty === "RSA";
  const curve = CURVES[alg];
  return curve !== undefined && jwk.kty === curve[0] && jwk.crv === curve[1];
}

/**
 * An issuer's JWKS, fetched from `jwksUri` or found through OIDC discovery, and cached.
 *
 * - A fetched set is used for `ttlMs`; then the next token fetches it again (one fetch however many
 *   tokens wait: fetches are single-flight).
 * - A `kid` the set does not hold causes a refetch only when the last fetch is older than
 *   `cooldownMs`, so a flood of tokens with invented `kid`s costs the issuer at most one request per
 *   window. A key rotation is picked up by the first token signed with the new key after that window.
 * - A failed fetch fails closed (no stale keys beyond the TTL) and is not retried within the cooldown.
 */
export class RemoteJwks implements KeySource {
  readonly #issuer: RemoteJwksIssuer;
  readonly #fetcher: JsonFetcher;
  readonly #clock: Clock;
  readonly #timing: JwksTiming;
  readonly #logger: Logger | undefined;
  #entry: Entry | undefined;
  #inflight: Promise<Entry> | undefined;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastError: IdentityError | undefined;
  #discovered: { jwksUri: string; at: number } | undefined;

  constructor(
    issuer: RemoteJwksIssuer,
    deps: { fetcher: JsonFetcher; clock?: Clock; timing?: Partial<JwksTiming>; logger?: Logger | undefined },
  ) {
    this.#logger = deps.logger;
    this.#issuer = issuer;
    this.#fetcher = deps.fetcher;
    this.#clock = deps.clock ?? systemClock;
    this.#timing = { ...JWKS_DEFAULTS, ...deps.timing };
  }

  async key(kid: string | undefined, alg: string): Promise<VerificationKey> {
    let entry = await this.#fresh();
    let jwk = select(entry, kid, alg);
    if (jwk === undefined) {
      if (this.#inflight) entry = await this.#inflight;
      else if (this.#clock.now() - this.#lastAttemptAt >= this.#timing.cooldownMs)
        entry = await this.#refresh();
      jwk = select(entry, kid, alg);
    }
    if (jwk === undefined) {
      throw new IdentityError(
        "key_unknown",
        kid === undefined
          ? "the token has no `kid` and the issuer does not publish exactly one fitting key"
          : "the token's `kid` is not among the issuer's published keys",
        { detail: { ...this.#who(), kid: kid?.slice(0, 100), alg } },
      );
    }
    const cacheKey = `${entry.keys.indexOf(jwk)}|${alg}`;
    const imported = entry.imported.get(cacheKey);
    if (imported) return imported;
    try {
      const key = publicKeyFromJwk(jwk, alg);
      entry.imported.set(cacheKey, key);
      return key;
    } catch (cause) {
      throw new IdentityError("key_unknown", "the issuer's key for this token cannot be used", {
        cause,
        detail: { ...this.#who(), kid: kid?.slice(0, 100), alg },
      });
    }
  }

  /** The cached set while it is fresh; otherwise a fetch (or the last failure, within the cooldown). */
  async #fresh(): Promise<Entry> {
    const entry = this.#entry;
    if (entry && this.#clock.now() < entry.fetchedAt + this.#timing.ttlMs) return entry;
    if (this.#inflight) return this.#inflight;
    if (this.#lastError && this.#clock.now() - this.#lastAttemptAt < this.#timing.cooldownMs)
      throw this.#lastError;
    return this.#refresh();
  }

  #refresh(): Promise<Entry> {
    this.#inflight ??= this.#load().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #load(): Promise<Entry> {
    this.#lastAttemptAt = this.#clock.now();
    try {
      const jwksUri = await this.#jwksUri();
      const raw = await this.#fetcher.getJson(jwksUri, this.#fetchOptions());
      const doc = jwksSchema.parse(raw);
      const keys = doc.keys.flatMap((k) => {
        const parsed = jwkSchema.safeParse(k);
        return parsed.success ? [parsed.data] : [];
      });
      const entry: Entry = { keys, fetchedAt: this.#clock.now(), imported: new Map() };
      this.#entry = entry;
      this.#lastError = undefined;
      return entry;
    } catch (cause) {
      const problem = (cause as Error).message;
      const hint = cause instanceof FetchError ? cause.hint : undefined;
      this.#lastError =
        cause instanceof IdentityError
          ? cause
          : new IdentityError("issuer_unavailable", "the issuer's signing keys cannot be fetched", {
              cause,
              detail: { ...this.#who(), problem, ...(hint === undefined ? {} : { hint }) },
            });
      // Once per failed fetch (at most one per cooldown), not per refused token: the operator's line.
      this.#logger?.warn(
        {
          ...this.#who(),
          reason: this.#lastError.reason,
          problem: cause instanceof IdentityError ? cause.message : problem,
          ...(cause instanceof FetchError && cause.code !== undefined ? { code: cause.code } : {}),
          ...(cause instanceof FetchError && cause.status !== undefined ? { status: cause.status } : {}),
          ...(hint === undefined ? {} : { hint }),
        },
        "issuer's signing keys cannot be fetched",
      );
      throw this.#lastError;
    }
  }

  async #jwksUri(): Promise<string> {
    if (this.#issuer.jwksUri !== undefined) return this.#issuer.jwksUri;
    const known = this.#discovered;
    if (known && this.#clock.now() < known.at + this.#timing.discoveryTtlMs) return known.jwksUri;
    const base = this.#issuer.url.replace(/\/+$/, "");
    const raw = await this.#fetcher.getJson(`${base}/.well-known/openid-configuration`, this.#fetchOptions());
    const doc = discoverySchema.parse(raw);
    if (doc.issuer !== this.#issuer.url) {
      // OpenID Connect Discovery §4.3: the document must name exactly the issuer it was fetched for.
      throw new IdentityError("issuer_unavailable", "the issuer's discovery document names another issuer", {
        detail: { ...this.#who(), discovered: doc.issuer.slice(0, 200) },
      });
    }
    this.#discovered = { jwksUri: doc.jwks_uri, at: this.#clock.now() };
    return doc.jwks_uri;
  }

  /** The issuer as log lines name it: its config name, or its URL when it has none. */
  #who(): { issuer: string } | { issuerUrl: string } {
    return this.#issuer.name === undefined ? { issuerUrl: this.#issuer.url } : { issuer: this.#issuer.name };
  }

  #fetchOptions() {
    return {
      allowInsecureHttp: this.#issuer.allowInsecureHttp,
      maxBytes: this.#timing.maxBytes,
      timeoutMs: this.#timing.timeoutMs,
    };
  }
}

function select(entry: Entry, kid: string | undefined, alg: string): Jwk | undefined {
  if (kid !== undefined) return entry.keys.find((k) => k.kid === kid && keyFits(k, alg));
  const fitting = entry.keys.filter((k) => keyFits(k, alg));
  return fitting.length === 1 ? fitting[0] : undefined;
}
