import { fetchableUrlProblem } from "./url-policy.ts";

/** Limits for one outbound JSON request to an issuer. */
export interface FetchJsonOptions {
  /** Plain http to a loopback IP is allowed only when the issuer's config says so. */
  allowInsecureHttp: boolean;
  /** Largest body read, in bytes; a larger answer is refused, not truncated. */
  maxBytes: number;
  /** Whole-request deadline in milliseconds. */
  timeoutMs: number;
}

/** Why a fetch failed, in words fit for the log. */
export class FetchError extends Error {
  override name = "FetchError";
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
    throw new FetchError(`${url}: answer of ${declared} bytes is larger than the ${maxBytes}-byte cap`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (!res.body) return Buffer.alloc(0);
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      await res.body.cancel().catch(() => {});
      throw new FetchError(`${url}: answer is larger than the ${maxBytes}-byte cap`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/**
 * The real {@link JsonFetcher}, on the platform's `fetch`. Redirects are followed by hand (at most
 * three) so that every hop is re-checked against the https/loopback rule; a body over the cap is
 * refused; anything but 200 with a JSON body is an error.
 */
export const httpJsonFetcher: JsonFetcher = {
  async getJson(url, options) {
    const signal = AbortSignal.timeout(options.timeoutMs);
    let current = url;
    for (let hop = 0; ; hop++) {
      const problem = fetchableUrlProblem(current, options.allowInsecureHttp);
      if (problem !== undefined) throw new FetchError(`${current} ${problem}`);
      let res: Response;
      try {
        res = await fetch(current, { redirect: "manual", signal, headers: { accept: "application/json" } });
      } catch (cause) {
        throw new FetchError(
          `${current}: ${(cause as Error).name === "TimeoutError" ? "timed out" : "request failed"}`,
          {
            cause,
          },
        );
      }
      if (res.status >= 300 && res.status < 400 && res.headers.has("location")) {
        await res.body?.cancel();
        if (hop >= MAX_REDIRECTS) throw new FetchError(`${url}: more than ${MAX_REDIRECTS} redirects`);
        current = new URL(res.headers.get("location")!, current).href;
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new FetchError(`${current}: HTTP ${res.status}`);
      }
      const body = await readCapped(res, options.maxBytes, current).catch((cause: unknown) => {
        if (cause instanceof FetchError) throw cause;
        throw new FetchError(`${current}: reading the answer failed`, { cause });
      });
      try {
        return JSON.parse(body.toString("utf8")) as unknown;
      } catch (cause) {
        throw new FetchError(`${current}: the answer is not JSON`, { cause });
      }
    }
  },
};
