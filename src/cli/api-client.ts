import type { z } from "zod";
import { readCapped as readCappedStream, TooLargeError } from "../common/read-capped.ts";
import { isLoopbackHostname } from "../common/url-policy.ts";
import { CliError } from "./io.ts";
import { reasonOf } from "./token-source.ts";

/** Options of {@link ApiClient}. */
export interface ApiClientOptions {
  /** Ferry's base URL (`--server` / `$FERRY_SERVER`). */
  server: string;
  /** The bearer token, sent only as `Authorization: Bearer`. */
  token: string;
  /** Default timeout per request in ms (default 30 s). */
  timeoutMs?: number;
  /** The fetch to use (tests pass their own; default global fetch). */
  fetch?: typeof fetch;
  /**
   * Gets a fresh token when Ferry says the current one expired, for reads only (a long wait outlives
   * a pipeline token's few minutes). Only a source that can mint again has one: GitHub Actions.
   */
  renew?: () => Promise<string>;
}

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  body?: unknown;
  /** This request's timeout in ms (a long-poll needs more than the default). */
  timeoutMs?: number;
}

/** A parsed answer. */
export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  data: T;
}

/**
 * A 4xx or 5xx answer from Ferry, with the problem document's fields when it sent one. Its message
 * is the one line the CLI prints: status, code, detail, reason and request id.
 */
export class ApiProblem extends CliError {
  override name = "ApiProblem";
  readonly status: number;
  readonly code: string | undefined;
  readonly detail: string | undefined;
  readonly reason: string | undefined;
  readonly requestId: string | undefined;

  constructor(
    status: number,
    fields: { code?: string; detail?: string; reason?: string; requestId?: string },
  ) {
    const parts = [`HTTP ${status}`];
    if (fields.code) parts.push(fields.code);
    let line = parts.join(" ");
    if (fields.detail) line += `: ${fields.detail}`;
    const extras = [
      ...(fields.reason ? [`reason ${fields.reason}`] : []),
      `request id ${fields.requestId || "none"}`,
    ];
    super(`${line} (${extras.join(", ")})`);
    this.status = status;
    this.code = fields.code;
    this.detail = fields.detail;
    this.reason = fields.reason;
    this.requestId = fields.requestId;
  }
}

/** Ferry could not be reached, or did not answer in time: transient, unlike a problem document. */
export class Unreachable extends CliError {
  override name = "Unreachable";
}

// A problem document or a resource is a few KiB; the cap keeps a wrong server from filling memory.
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
/** The reasons of a 401 for a token that was good and has aged out. */
const EXPIRED: ReadonlySet<string> = new Set(["token_expired", "token_too_old"]);

/**
 * Checks `--server`: an absolute http(s) URL, https unless the host is loopback (the token would
 * otherwise cross the network in clear text), no credentials in it. Returns it without a trailing slash.
 */
export function checkServerUrl(server: string | undefined): string {
  if (server === undefined || server.trim() === "") {
    throw new CliError("no server: pass --server URL or set FERRY_SERVER");
  }
  let url: URL;
  try {
    url = new URL(server.trim());
  } catch {
    throw new CliError(`--server ${JSON.stringify(server)} is not a URL`);
  }
  if (url.username !== "" || url.password !== "") throw new CliError("--server must not carry credentials");
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new CliError("--server must be an https URL");
  // `localhost` is accepted here, unlike for issuers: it is the user's own machine that resolves it.
  const loopback = isLoopbackHostname(url.hostname) || url.hostname.toLowerCase() === "localhost";
  if (url.protocol === "http:" && !loopback) {
    throw new CliError("--server must be https (plain http is allowed only for a loopback address)");
  }
  if (url.search !== "" || url.hash !== "") throw new CliError("--server must not have a query or fragment");
  return url.href.replace(/\/+$/, "");
}

/**
 * A small client of Ferry's API over fetch: bearer auth, a timeout per request, JSON in and out,
 * problem+json turned into {@link ApiProblem}, network failures into a {@link CliError}. Redirects
 * are refused: the API never redirects, and following one would carry the token elsewhere.
 */
export class ApiClient {
  readonly server: string;
  #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #renew: (() => Promise<string>) | undefined;

  constructor(options: ApiClientOptions) {
    this.server = checkServerUrl(options.server);
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
    this.#renew = options.renew;
  }

  /** GET `path`, the answer parsed by `schema`. */
  get<S extends z.ZodType>(
    path: string,
    schema: S,
    options: RequestOptions = {},
  ): Promise<ApiResponse<z.output<S>>> {
    return this.request("GET", path, schema, options);
  }

  /** POST `path` with a JSON body, the answer parsed by `schema`. */
  post<S extends z.ZodType>(
    path: string,
    schema: S,
    options: RequestOptions = {},
  ): Promise<ApiResponse<z.output<S>>> {
    return this.request("POST", path, schema, options);
  }

  /** Sends one request; throws {@link ApiProblem} for a 4xx/5xx, {@link CliError} when Ferry cannot be reached. */
  async request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    options: RequestOptions = {},
  ): Promise<ApiResponse<z.output<S>>> {
    try {
      return await this.#send(method, path, schema, options);
    } catch (err) {
      // A write is never sent twice: it consumed its token, and the server may have acted on it.
      if (!(err instanceof ApiProblem && EXPIRED.has(err.reason ?? "") && method === "GET" && this.#renew))
        throw err;
      this.#token = await this.#renew();
      return this.#send(method, path, schema, options);
    }
  }

  async #send<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    options: RequestOptions,
  ): Promise<ApiResponse<z.output<S>>> {
    const url = new URL(`${this.server}${path}`);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: "application/json, application/problem+json",
      ...options.headers,
      authorization: `Bearer ${this.#token}`,
    };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs ?? this.#timeoutMs),
      });
    } catch (err) {
      throw new Unreachable(`cannot reach ${this.server}: ${reasonOf(err)}`);
    }
    const requestId = res.headers.get("x-request-id") ?? undefined;
    const text = await readCapped(res, this.server);
    if (res.status >= 300 && res.status < 400) {
      throw new CliError(
        `${this.server} answered ${method} ${path} with a redirect (HTTP ${res.status}); not followed`,
      );
    }
    if (res.status >= 400) throw problemOf(res.status, text, requestId);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CliError(
        `${this.server} answered ${method} ${path} with something that is not JSON (HTTP ${res.status})`,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new CliError(
        `${this.server} answered ${method} ${path} with an unexpected shape (${first?.path.join(".") || "body"}: ${first?.message ?? "invalid"})`,
      );
    }
    return { status: res.status, headers: res.headers, data: parsed.data };
  }
}

/** The whole answer as text, at most {@link MAX_BODY_BYTES} (the common capped reader, in the CLI's terms). */
async function readCapped(res: Response, server: string): Promise<string> {
  if (res.body === null) return "";
  try {
    return Buffer.from(await readCappedStream(res.body, MAX_BODY_BYTES)).toString("utf8");
  } catch (err) {
    if (err instanceof TooLargeError)
      throw new CliError(`${server} sent an answer larger than ${MAX_BODY_BYTES} bytes`);
    throw new Unreachable(`cannot read the answer of ${server}: ${reasonOf(err)}`);
  }
}

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

function problemOf(status: number, text: string, headerRequestId: string | undefined): ApiProblem {
  let doc: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed))
      doc = parsed as Record<string, unknown>;
  } catch {
    // Not a problem document (a proxy's HTML page): the status and request id still say enough.
  }
  const detail = str(doc.detail) ?? str(doc.title);
  const code = str(doc.code);
  const reason = str(doc.reason);
  // Ferry's problem documents name it `requestId`; `request_id` is accepted as well.
  const requestId = str(doc.requestId) ?? str(doc.request_id) ?? headerRequestId;
  return new ApiProblem(status, {
    ...(code ? { code } : {}),
    ...(detail ? { detail: oneLine(detail) } : {}),
    ...(reason ? { reason } : {}),
    ...(requestId ? { requestId } : {}),
  });
}

/** Control characters from a server never reach the terminal, and a detail stays on one line. */
export function oneLine(text: string, max = 500): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
