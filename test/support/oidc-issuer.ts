import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { LOOPBACK } from "./net.ts";

/** Algorithms the test issuer can make keys for. */
export type IssuerAlg = "RS256" | "ES256";

/** One signing key of the issuer. */
export interface IssuerKey {
  kid: string;
  alg: IssuerAlg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** What the issuer saw of one request. */
export interface IssuerRequest {
  method: string;
  path: string;
  at: number;
}

/** A canned answer that replaces the normal one for a path (oversized bodies, redirects, failures). */
export interface CannedResponse {
  status: number;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/** Options of {@link startOidcIssuer}. */
export interface OidcIssuerOptions {
  /** Algorithms of the keys published at start (default `["RS256"]`); the first one signs by default. */
  algorithms?: IssuerAlg[];
  /** Path under the origin that is the issuer URL (`/org/abc` for CircleCI-like issuers; default none). */
  path?: string;
  /** Path of the JWKS (default `<path>/.well-known/jwks`, as GitHub names it). */
  jwksPath?: string;
  /** The `issuer` the discovery document claims (default: the real issuer URL). */
  discoveryIssuer?: string;
  /** Serve https with this key and certificate (PEM) instead of plain http. */
  tls?: { key: string; cert: string };
}

/** Options of {@link OidcIssuer.sign}. */
export interface SignOptions {
  /** Which published (or retired) key signs; default the newest. */
  kid?: string;
  /** Omit the `kid` header. */
  omitKid?: boolean;
  /** Put this `kid` in the header instead of the signer's. */
  headerKid?: string;
  /** Extra protected header parameters (`jwk`, `jku`, `x5u`, `typ`…), merged last. */
  header?: Record<string, unknown>;
}

/** A running loopback OIDC issuer; see {@link startOidcIssuer}. */
export interface OidcIssuer {
  /** The issuer URL: exactly what tokens carry in `iss`. */
  url: string;
  /** The origin (`http://127.0.0.1:PORT`, or https with {@link OidcIssuerOptions.tls}). */
  origin: string;
  jwksUri: string;
  /** Every request received, in order (a live array). */
  requests: IssuerRequest[];
  /** Requests for the JWKS only. */
  jwksRequests(): IssuerRequest[];
  clearRequests(): void;
  /** Every key ever made, newest last; `published` says which the JWKS lists. */
  keys: IssuerKey[];
  published: Set<string>;
  /** Makes a new key, publishes it and makes it the default signer. */
  rotate(alg?: IssuerAlg): Promise<IssuerKey>;
  /** Stops publishing a key (its tokens then fail with an unknown `kid`). */
  retire(kid: string): void;
  /** Signs `payload` exactly as given (no claims are added). */
  sign(payload: Record<string, unknown>, options?: SignOptions): Promise<string>;
  /** Replaces the answer for a path until cleared with `undefined`. */
  setResponse(path: string, response: CannedResponse | undefined): void;
  stop(): Promise<void>;
}

async function makeKey(alg: IssuerAlg): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID().replaceAll("-", "").slice(0, 20);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicJwk };
}

/**
 * Starts an OIDC issuer on loopback (`node:http`): OIDC discovery and a JWKS, every request
 * recorded, keys that can be rotated and retired, and tokens signed with jose with any header or
 * claims a test wants. Configure it in Ferry with `allowInsecureHttp: true` (loopback only).
 */
export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const keys: IssuerKey[] = [];
  for (const alg of options.algorithms ?? ["RS256"]) keys.push(await makeKey(alg));
  // The first algorithm signs by default: keep it last ("newest").
  keys.reverse();
  const published = new Set(keys.map((k) => k.kid));
  const requests: IssuerRequest[] = [];
  const canned = new Map<string, CannedResponse>();
  const basePath = (options.path ?? "").replace(/\/+$/, "");
  const jwksPath = options.jwksPath ?? `${basePath}/.well-known/jwks`;
  const discoveryPath = `${basePath}/.well-known/openid-configuration`;
  let url = "";
  let origin = "";

  const send = (
    res: ServerResponse,
    status: number,
    body: string | Buffer,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    requests.push({ method: req.method ?? "", path, at: Date.now() });
    const override = canned.get(path);
    if (override) {
      send(res, override.status, override.body ?? "", override.headers);
      return;
    }
    if (req.method !== "GET") {
      send(res, 405, JSON.stringify({ error: "method not allowed" }));
      return;
    }
    if (path === discoveryPath) {
      send(
        res,
        200,
        JSON.stringify({
          issuer: options.discoveryIssuer ?? url,
          jwks_uri: `${origin}${jwksPath}`,
          subject_types_supported: ["public", "pairwise"],
          response_types_supported: ["id_token"],
          claims_supported: ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
          id_token_signing_alg_values_supported: [...new Set(keys.map((k) => k.alg))],
          scopes_supported: ["openid"],
        }),
      );
      return;
    }
    if (path === jwksPath) {
      send(
        res,
        200,
        JSON.stringify({ keys: keys.filter((k) => published.has(k.kid)).map((k) => k.publicJwk) }),
      );
      return;
    }
    send(res, 404, JSON.stringify({ error: "not found" }));
  };
  const server = options.tls ? createTlsServer(options.tls, handle) : createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `${options.tls ? "https" : "http"}://${LOOPBACK}:${port}`;
  url = `${origin}${basePath}`;

  return {
    url,
    origin,
    jwksUri: `${origin}${jwksPath}`,
    requests,
    jwksRequests: () => requests.filter((r) => r.path === jwksPath),
    clearRequests: () => {
      requests.length = 0;
    },
    keys,
    published,
    async rotate(alg = "RS256") {
      const key = await makeKey(alg);
      keys.push(key);
      published.add(key.kid);
      return key;
    },
    retire(kid) {
      published.delete(kid);
    },
    async sign(payload, opts = {}) {
      const key = opts.kid === undefined ? keys[keys.length - 1]! : keys.find((k) => k.kid === opts.kid);
      if (!key) throw new Error(`no key ${opts.kid}`);
      const header: Record<string, unknown> = { alg: key.alg, typ: "JWT" };
      if (!opts.omitKid) header.kid = opts.headerKid ?? key.kid;
      Object.assign(header, opts.header);
      return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
    },
    setResponse(path, response) {
      if (response === undefined) canned.delete(path);
      else canned.set(path, response);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Ferry's config entry (`issuers[]`, before validation) for a test issuer: its URL, and plain HTTP
 * allowed since it listens on loopback. `extra` adds fields (platform, kind, ...) or overrides them.
 */
export function loopbackIssuerConfig(
  name: string,
  issuer: Pick<OidcIssuer, "url">,
  audience: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name, url: issuer.url, audience, allowInsecureHttp: true, ...extra };
}

/** Base64url of a JSON value: for hand-made tokens (`alg: none`, broken segments). */
export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
