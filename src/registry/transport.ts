import { FerryError } from "../common/errors.ts";
import { type RegistryEndpoint, redirectTarget } from "./allow-list.ts";
import { RegistryAuthenticator } from "./auth.ts";
import { type Body, exchange, type HttpPolicy, type HttpResponse } from "./http.ts";

/** One request to a registry. */
export interface RegistryRequest {
  method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** A path under the registry (`/v2/…`), or an absolute URL the registry gave (an upload location). */
  url: string;
  /** The token scopes the operation needs (a mount also needs pull on the source repository). */
  scopes: readonly string[];
  headers?: Record<string, string>;
  body?: Body;
  /** Blob reads may be redirected to listed storage origins; nothing else may leave the registry. */
  storageRedirects?: boolean;
  /** Names the object in error messages. */
  where: string;
  /** Aborts the request (and the reading of its answer) when the caller gives up. */
  signal?: AbortSignal | undefined;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Sends requests to one allow-listed registry: authentication (answering a 401 once), retries and
 * timeouts (see {@link exchange}), and redirects. A redirect back to the registry keeps the
 * credentials; one to a listed blob storage origin drops the Authorization header; one anywhere else
 * is refused before any request goes there (`forbidden`).
 */
export class RegistryTransport {
  readonly endpoint: RegistryEndpoint;
  readonly #policy: HttpPolicy;
  readonly #auth: RegistryAuthenticator;

  constructor(endpoint: RegistryEndpoint, policy: HttpPolicy) {
    this.endpoint = endpoint;
    this.#policy = policy;
    this.#auth = new RegistryAuthenticator(endpoint, policy);
  }

  /** Sends `req`; the answer's body must be read or discarded by the caller. */
  async send(req: RegistryRequest): Promise<HttpResponse> {
    let url = new URL(req.url, this.endpoint.origin);
    if (url.origin !== this.endpoint.origin) {
      throw new FerryError(
        "forbidden",
        `${req.where}: registry ${this.endpoint.host} pointed to ${url.origin}, which is not the registry`,
      );
    }
    let challenged = false;
    for (let redirects = 0; ; ) {
      const headers = new Headers(req.headers);
      const authorization = await this.#auth.authorization(req.scopes);
      if (authorization !== undefined) headers.set("authorization", authorization);
      const res = await exchange(
        url,
        { method: req.method, headers, body: req.body, where: req.where, signal: req.signal },
        this.#policy,
      );
      if (res.status === 401 && !challenged && !(req.body instanceof ReadableStream)) {
        challenged = true;
        if (await this.#auth.challenged(res.headers, req.scopes, authorization)) {
          await res.discard();
          continue;
        }
        return res;
      }
      const location = res.headers.get("location");
      if (
        !REDIRECT_STATUSES.has(res.status) ||
        location === null ||
        (req.method !== "GET" && req.method !== "HEAD")
      ) {
        return res;
      }
      await res.discard();
      if (++redirects > MAX_REDIRECTS) {
        throw new FerryError("upstream_invalid", `${req.where}: more than ${MAX_REDIRECTS} redirects`);
      }
      const target = new URL(location, url);
      const kind = redirectTarget(this.endpoint, target);
      if (kind === "registry") {
        url = target;
        continue;
      }
      if (kind === "storage" && req.storageRedirects) {
        return this.#fromStorage(target, req, redirects);
      }
      throw new FerryError(
        "forbidden",
        `${req.where}: registry ${this.endpoint.host} redirected to ${target.origin}, which is not listed in its \`blobRedirects\`; the redirect was not followed`,
      );
    }
  }

  // Storage (S3, a CDN) gets no credentials: a pre-signed URL carries its own authorization.
  async #fromStorage(first: URL, req: RegistryRequest, redirects: number): Promise<HttpResponse> {
    let url = first;
    for (;;) {
      const headers = new Headers(req.headers);
      headers.delete("authorization");
      const res = await exchange(
        url,
        { method: req.method, headers, where: req.where, signal: req.signal },
        this.#policy,
      );
      const location = res.headers.get("location");
      if (!REDIRECT_STATUSES.has(res.status) || location === null) return res;
      await res.discard();
      const target = new URL(location, url);
      if (++redirects > MAX_REDIRECTS || redirectTarget(this.endpoint, target) !== "storage") {
        throw new FerryError(
          "forbidden",
          `${req.where}: blob storage redirected to ${target.origin}, which is not listed in \`blobRedirects\``,
        );
      }
      url = target;
    }
  }
}
