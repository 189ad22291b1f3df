import { createPrivateKey, type KeyObject, randomUUID, timingSafeEqual, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SignJWT } from "jose";
import { LOOPBACK } from "./net.ts";
import { makeTempDir, runOk } from "./proc.ts";

/** One entry of a token's `access` claim, as the distribution token spec defines it. */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** What the token server saw of one request, kept so tests can assert on the scopes clients asked for. */
export interface TokenRequestRecord {
  method: string;
  path: string;
  /** Every query parameter (and, for POST, form field except the password), all values kept. */
  query: Record<string, string[]>;
  /** The raw `scope` values, split on spaces (one entry per requested scope). */
  scopes: string[];
  service: string | undefined;
  /** Whether the request carried credentials (Basic auth, or a password grant). */
  authPresented: boolean;
  /** The user the credentials named, when they were presented (whether or not they were right). */
  username: string | undefined;
  /** The HTTP status the server answered with. */
  status: number;
  /** The access the issued token granted (empty when no token was issued). */
  granted: TokenAccess[];
}

/**
 * Decides what access a token grants. `user` is undefined for anonymous requests.
 * The default grants every requested action to an authenticated user and nothing to anonymous ones.
 */
export type TokenAuthorizer = (user: string | undefined, requested: TokenAccess[]) => TokenAccess[];

/** Options for {@link startTokenServer}. */
export interface TokenServerOptions {
  /** Users allowed to obtain tokens: name → password. */
  users?: Record<string, string>;
  /** The `service` the registry names in its challenge; becomes the token audience. */
  service?: string;
  /** The `iss` claim; the registry's `auth.token.issuer` must match it. */
  issuer?: string;
  /** Token lifetime in seconds (default 300). */
  expiresInSeconds?: number;
  authorize?: TokenAuthorizer;
}

/** A running token server; see {@link startTokenServer}. */
export interface TokenServer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** The token endpoint (the registry's `auth.token.realm`). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file of the self-signed signing certificate (the registry's `auth.token.rootcertbundle`). */
  certPath: string;
  /** Every request received, in order (a live array). */
  requests: TokenRequestRecord[];
  /** Forgets the recorded requests, so a test can assert on only its own. */
  clearRequests(): void;
  /** Signs a token directly (for tests that need a token without going through HTTP). */
  issueToken(subject: string, access: TokenAccess[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Parses a scope such as `repository:team/app:pull,push`. The resource type is before the first
 * colon and the actions after the last one, so names with colons survive (per the token scope grammar).
 */
export function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter((a) => a !== ""),
  };
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.toLowerCase().startsWith("basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return { user: decoded, password: "" };
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const defaultAuthorize: TokenAuthorizer = (user, requested) => (user === undefined ? [] : requested);

/**
 * Starts a Docker registry token server (the distribution "token authentication" spec) on loopback.
 * `GET /token?service=…&scope=…` with Basic auth, and the OAuth2 password grant on `POST /token`.
 * Tokens are ES256 JWTs whose `x5c` header carries a self-signed certificate made with the openssl CLI:
 * distribution 2.8 verifies that chain against `rootcertbundle` and ignores keys it cannot chain.
 */
export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const users = opts.users ?? {};
  const service = opts.service ?? "ferry-test-registry";
  const issuer = opts.issuer ?? "ferry-test-token-server";
  const ttl = opts.expiresInSeconds ?? 300;
  const authorize = opts.authorize ?? defaultAuthorize;

  const tmp = await makeTempDir("token");
  const keyPath = join(tmp.path, "signing-key.pem");
  const certPath = join(tmp.path, "signing-cert.pem");
  try {
    await runOk("openssl", [
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-out",
      keyPath,
    ]);
    await runOk("openssl", [
      "req",
      "-x509",
      "-new",
      "-key",
      keyPath,
      "-sha256",
      "-days",
      "30",
      "-subj",
      "/CN=Ferry test token issuer",
      "-out",
      certPath,
    ]);
  } catch (err) {
    await tmp.remove();
    throw err;
  }
  const privateKey: KeyObject = createPrivateKey(await readFile(keyPath));
  const certDer = new X509Certificate(await readFile(certPath)).raw.toString("base64");

  async function issueToken(subject: string, access: TokenAccess[]): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return (
      new SignJWT({ access })
        .setProtectedHeader({ alg: "ES256", typ: "JWT", x5c: [certDer] })
        .setIssuer(issuer)
        .setSubject(subject)
        // A plain string: distribution 2.8 decodes `aud` into a string and rejects an array.
        .setAudience(service)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + ttl)
        .setJti(randomUUID())
        .sign(privateKey)
    );
  }

  const requests: TokenRequestRecord[] = [];

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://token.invalid");
    const query: Record<string, string[]> = {};
    const addParam = (k: string, v: string) => {
      query[k] = [...(query[k] ?? []), v];
    };
    for (const [k, v] of url.searchParams) addParam(k, v);
    let credentials = parseBasic(req.headers.authorization);
    if (req.method === "POST") {
      const form = new URLSearchParams(await readBody(req));
      for (const [k, v] of form) if (k !== "password") addParam(k, v);
      if (form.get("grant_type") === "password") {
        credentials = { user: form.get("username") ?? "", password: form.get("password") ?? "" };
      }
    }
    const scopes = (query.scope ?? []).flatMap((s) => s.split(" ")).filter((s) => s !== "");
    const record: TokenRequestRecord = {
      method: req.method ?? "",
      path: url.pathname,
      query,
      scopes,
      service: query.service?.[0],
      authPresented: credentials !== undefined,
      username: credentials?.user,
      status: 0,
      granted: [],
    };
    requests.push(record);

    if (url.pathname !== "/token" || (req.method !== "GET" && req.method !== "POST")) {
      record.status = 404;
      send(res, 404, { errors: [{ code: "NOT_FOUND", message: "no such endpoint" }] });
      return;
    }
    if (record.service !== undefined && record.service !== service) {
      record.status = 400;
      send(res, 400, { errors: [{ code: "INVALID_SERVICE", message: `unknown service ${record.service}` }] });
      return;
    }
    let user: string | undefined;
    if (credentials) {
      const expected = users[credentials.user];
      if (expected === undefined || !safeEqual(expected, credentials.password)) {
        record.status = 401;
        send(
          res,
          401,
          { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] },
          { "www-authenticate": 'Basic realm="ferry-test-token-server"' },
        );
        return;
      }
      user = credentials.user;
    }
    const requested = scopes.map(parseScope).filter((a): a is TokenAccess => a !== undefined);
    const granted = authorize(user, requested);
    const token = await issueToken(user ?? "", granted);
    record.status = 200;
    record.granted = granted;
    send(res, 200, {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: new Date().toISOString(),
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { errors: [{ code: "UNKNOWN", message: String(err) }] });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const base = `http://${LOOPBACK}:${port}`;

  return {
    url: base,
    realm: `${base}/token`,
    service,
    issuer,
    certPath,
    requests,
    clearRequests: () => {
      requests.length = 0;
    },
    issueToken,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tmp.remove();
    },
  };
}
