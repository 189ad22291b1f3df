import { readCapped as readAllCapped, TooLargeError } from "../common/read-capped.ts";
import { fetchableUrlProblem } from "../common/url-policy.ts";

/** Limits for one outbound JSON request to an issuer. */
export interface FetchJsonOptions {
  /** Plain http to a loopback IP is allowed only when the issuer's config says so. */
  allowInsecureHttp: boolean;
  /** Largest body read, in bytes; a larger answer is refused, not truncated. */
  maxBytes: number;
  /** Whole-request deadline in milliseconds. */
  timeoutMs: number;
}

/** What kind of failure a {@link FetchError} is: what an operator looks at first. */
export type FetchFailure =
  | "certificate"
  | "refused"
  | "timeout"
  | "dns"
  | "network"
  | "status"
  | "redirects"
  | "too_large"
  | "not_json"
  | "url";

/** The hint logged with a certificate failure: the usual cause is an issuer behind a private CA. */
export const PRIVATE_CA_HINT =
  "if the issuer's certificate comes from a private CA, give Node that CA: set NODE_EXTRA_CA_CERTS=/path/to/ca.pem in Ferry's environment (see docs/identity.md)";

/** Why a fetch failed, in words fit for the log, with the kind of failure and the system code. */
export class FetchError extends Error {
  override name = "FetchError";
  readonly failure: FetchFailure | undefined;
  /** The system or TLS error code (`ECONNREFUSED`, `DEPTH_ZERO_SELF_SIGNED_CERT`, …) when there is one. */
  readonly code: string | undefined;
  /** For `status`: the HTTP status answered. */
  readonly status: number | undefined;

  constructor(
    message: string,
    options: { cause?: unknown; failure?: FetchFailure; code?: string; status?: number } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.failure = options.failure;
    this.code = options.code;
    this.status = options.status;
  }

  /** What to try next, for the failures an operator can fix from Ferry's side. */
  get hint(): string | undefined {
    return this.failure === "certificate" ? PRIVATE_CA_HINT : undefined;
  }
}

// TLS verification failures (Node's `X509_V_ERR_*` names and the hostname check), in operator words.
const CERTIFICATE_CODES: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its certificate is signed by an unknown authority",
  UNABLE_TO_GET_ISSUER_CERT: "its certificate is signed by an unknown authority",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "its certificate is signed by an unknown authority",
  SELF_SIGNED_CERT_IN_CHAIN: "its certificate chain ends in a self-signed certificate that is not trusted",
  DEPTH_ZERO_SELF_SIGNED_CERT: "its certificate is self-signed and not trusted",
  CERT_HAS_EXPIRED: "its certificate has expired",
  CERT_NOT_YET_VALID: "its certificate is not valid yet",
  ERR_TLS_CERT_ALTNAME_INVALID: "its certificate does not name this host",
  CERT_UNTRUSTED: "its certificate is not trusted",
  CERT_REVOKED: "its certificate is revoked",
};

const NETWORK_CODES: Record<string, [FetchFailure, string]> = {
  ECONNREFUSED: ["refused", "connection refused"],
  ECONNRESET: ["network", "connection reset"],
  EHOSTUNREACH: ["network", "host unreachable"],
  ENETUNREACH: ["network", "network unreachable"],
  ETIMEDOUT: ["timeout", "connection timed out"],
  UND_ERR_CONNECT_TIMEOUT: ["timeout", "connection timed out"],
  ENOTFOUND: ["dns", "host name not found"],
  EAI_AGAIN: ["dns", "host name lookup failed, temporarily"],
};

/**
 * The system error's code under a failed `fetch`: undici wraps it in `TypeError("fetch failed")`'s
 * `cause` (an `AggregateError` when several addresses were tried; the first says enough).
 */
function systemCode(err: unknown): string | undefined {
  let first: string | undefined;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      if (code in CERTIFICATE_CODES || code in NETWORK_CODES) return code;
      first ??= code;
    }
    e = (e instanceof AggregateError ? e.errors[0] : undefined) ?? e.cause;
  }
  return first;
}

/** A failed `fetch` as a {@link FetchError} naming the cause: TLS, refused, timeout, DNS. */
function requestFailed(url: string, cause: unknown): FetchError {
  if ((cause as Error).name === "TimeoutError")
    return new FetchError(`${url}: timed out`, { cause, failure: "timeout" });
  const code = systemCode(cause);
  if (code !== undefined && code in CERTIFICATE_CODES)
    return new FetchError(`${url}: TLS failed: ${CERTIFICATE_CODES[code]} (${code})`, {
      cause,
      failure: "certificate",
      code,
    });
  const network = code === undefined ? undefined : NETWORK_CODES[code];
  if (network !== undefined)
    return new FetchError(`${url}: ${network[1]} (${code})`, { cause, failure: network[0], code });
  const said =
    cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : "";
  return new FetchError(
    `${url}: request failed${code ? ` (${code})` : ""}${said ? `: ${said.slice(0, 200)}` : ""}`,
    {
      cause,
      failure: "network",
      ...(code === undefined ? {} : { code }),
    },
  );
}

/** The port through which identity code reads discovery documents and JWKS: GET a URL, parse JSON. */
export interface JsonFetcher {
  getJson(url: string, options: FetchJsonOptions): Promise<unknown>;
}

const MAX_REDIRECTS = 3;

async function readCapped(res: Response, maxBytes: number, url: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw new FetchError(`${url}: answer of ${declared} bytes is larger than the ${maxBytes}-byte cap`, {
      failure: "too_large",
    });
  }
  if (!res.body) return Buffer.alloc(0);
  try {
    const bytes = await readAllCapped(res.body, maxBytes);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (err) {
    if (err instanceof TooLargeError)
      throw new FetchError(`${url}: answer is larger than the ${maxBytes}-byte cap`, {
        failure: "too_large",
      });
    throw err;
  }
}

/**
 * The real {@link JsonFetcher}, on the platform's `fetch`. Redirects are followed by hand (at most
 * three) so that every hop is re-checked against the https/loopback rule; a body over the cap is
 * refused; anything but 200 with a JSON body is an error.
 */
export const httpJsonFetcher: JsonFetcher = {
  async getJson(url, options) {
    // A real timer, not the injected Clock: it only bounds this network I/O (a hung issuer), decides
    // nothing about tokens, and a FakeClock that never moves would leave a stalled fetch hanging.
    const signal = AbortSignal.timeout(options.timeoutMs);
    let current = url;
    for (let hop = 0; ; hop++) {
      const problem = fetchableUrlProblem(current, options.allowInsecureHttp);
      if (problem !== undefined) throw new FetchError(`${current} ${problem}`, { failure: "url" });
      let res: Response;
      try {
        res = await fetch(current, { redirect: "manual", signal, headers: { accept: "application/json" } });
      } catch (cause) {
        throw requestFailed(current, cause);
      }
      if (res.status >= 300 && res.status < 400 && res.headers.has("location")) {
        await res.body?.cancel();
        if (hop >= MAX_REDIRECTS)
          throw new FetchError(`${url}: more than ${MAX_REDIRECTS} redirects`, { failure: "redirects" });
        current = new URL(res.headers.get("location")!, current).href;
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new FetchError(`${current}: HTTP ${res.status}`, { failure: "status", status: res.status });
      }
      const body = await readCapped(res, options.maxBytes, current).catch((cause: unknown) => {
        if (cause instanceof FetchError) throw cause;
        throw new FetchError(`${current}: reading the answer failed`, { cause, failure: "network" });
      });
      try {
        return JSON.parse(body.toString("utf8")) as unknown;
      } catch (cause) {
        throw new FetchError(`${current}: the answer is not JSON`, { cause, failure: "not_json" });
      }
    }
  },
};
