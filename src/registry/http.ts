import { isConnectionError, type RetryPolicy, waitBeforeRetry } from "../common/backoff.ts";
import type { Clock } from "../common/clock.ts";
import { FerryError } from "../common/errors.ts";
import { isRetryableStatus } from "./retry.ts";
import { readCapped } from "./streams.ts";

/** The fetch function the client uses (Node's global fetch; tests may wrap it). */
export type FetchFn = (input: string | URL, init: RequestInit) => Promise<Response>;

/** How every HTTP exchange with a registry or token server behaves. */
export interface HttpPolicy {
  fetch: FetchFn;
  /** An exchange fails when nothing (request bytes sent, headers, or body bytes) moves for this long. */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Times the backoff between retries and the expiry of cached tokens. */
  clock: Clock;
}

/** A request body: bytes can be sent again on a retry, a stream cannot. */
export type Body = Uint8Array | string | ReadableStream<Uint8Array>;

/** One HTTP answer whose body is watched by the stall timer until it is read or discarded. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  url: URL;
  /** The body stream (null for HEAD or an empty answer); errors with `upstream_timeout` on a stall. */
  body: ReadableStream<Uint8Array> | null;
  /** Reads the whole body, refusing more than `maxBytes`. */
  bytes(maxBytes: number): Promise<Uint8Array>;
  /** Drops the body so the connection is released (always call it on answers you do not read). */
  discard(): Promise<void>;
}

/** The options of one exchange. */
export interface ExchangeInit {
  method: string;
  headers: Headers;
  body?: Body | undefined;
  /** Names the object in error messages. */
  where: string;
  /**
   * The caller's cancellation (a verification deadline): aborting it aborts the request, or the body
   * being read, and the exchange rejects with the signal's reason. Retries stop too.
   */
  signal?: AbortSignal | undefined;
}

function ferryCause(err: unknown): FerryError | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    if (e instanceof FerryError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function timeoutError(where: string, timeoutMs: number): FerryError {
  return new FerryError("upstream_timeout", `${where}: no answer for ${timeoutMs} ms`);
}

/** Why `signal` aborted, as an error to reject with (its own reason when that is an error). */
export function abortReason(signal: AbortSignal, where: string): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new FerryError("upstream_timeout", `${where}: cancelled`);
}

/** The backoff before retry `attempt` on the policy's clock; when `signal` aborts, rejects with {@link abortReason}. */
async function backoff(
  attempt: number,
  policy: HttpPolicy,
  init: ExchangeInit,
  retryAfter?: string | null,
): Promise<void> {
  const signal = init.signal;
  try {
    await waitBeforeRetry(policy.clock, attempt, policy.retry, { retryAfter, signal });
  } catch (err) {
    // The clock's sleep rejects only on abort: report it the way every other cancellation is.
    throw signal?.aborted ? abortReason(signal, init.where) : err;
  }
}

/**
 * One exchange, with the stall timer: the request is aborted when no progress is made for
 * `policy.timeoutMs` (upload chunks, headers and body chunks each count as progress). Redirects are
 * returned, never followed: the caller decides where they may lead.
 */
export async function exchangeOnce(url: URL, init: ExchangeInit, policy: HttpPolicy): Promise<HttpResponse> {
  const outer = init.signal;
  if (outer?.aborted) throw abortReason(outer, init.where);
  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  // The caller's signal aborts this request (and its body); released once the body is done.
  const cancel = () => controller.abort(abortReason(outer!, init.where));
  outer?.addEventListener("abort", cancel, { once: true });
  const release = () => outer?.removeEventListener("abort", cancel);
  const stop = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const cancelled = () => (outer?.aborted ? abortReason(outer, init.where) : undefined);
  // The stall timer is a real timer, not the policy's clock, like a fetch's `AbortSignal.timeout`:
  // it only bounds network I/O (re-armed on every chunk), decides nothing, and a FakeClock that
  // never moves would leave a stalled transfer hanging.
  const arm = () => {
    stop();
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(timeoutError(init.where, policy.timeoutMs));
    }, policy.timeoutMs);
    // A forgotten body must not keep the process alive for the timeout.
    timer.unref();
  };
  let body: RequestInit["body"] = init.body as RequestInit["body"];
  if (init.body instanceof ReadableStream) {
    body = init.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          arm();
          c.enqueue(chunk);
        },
      }),
    );
  }
  arm();
  let res: Response;
  try {
    res = await policy.fetch(url, {
      method: init.method,
      headers: init.headers,
      body,
      redirect: "manual",
      signal: controller.signal,
      ...(init.body instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
  } catch (err) {
    stop();
    release();
    if (timedOut) throw timeoutError(init.where, policy.timeoutMs);
    const aborted = cancelled();
    if (aborted) throw aborted;
    // A request body that failed its own check (a digest mismatch while streaming) says why itself.
    throw ferryCause(err) ?? err;
  }
  let stream: ReadableStream<Uint8Array> | null = null;
  if (res.body === null) {
    stop();
    release();
  } else {
    arm();
    const reader = res.body.getReader();
    stream = new ReadableStream<Uint8Array>({
      async pull(c) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            stop();
            release();
            c.close();
            return;
          }
          arm();
          c.enqueue(value);
        } catch (err) {
          stop();
          release();
          throw timedOut ? timeoutError(init.where, policy.timeoutMs) : (cancelled() ?? err);
        }
      },
      async cancel(reason) {
        stop();
        release();
        await reader.cancel(reason).catch(() => {});
      },
    });
  }
  const body$ = stream;
  return {
    status: res.status,
    headers: res.headers,
    url,
    body: body$,
    bytes: (maxBytes) =>
      body$ === null ? Promise.resolve(new Uint8Array()) : readCapped(body$, maxBytes, init.where),
    discard: async () => {
      stop();
      release();
      await body$?.cancel().catch(() => {});
    },
  };
}

/**
 * {@link exchangeOnce} with bounded retries: on 408, 429 and transient 5xx answers, and on connection
 * errors, with jittered exponential backoff. A stream body is sent once (it cannot be replayed), and
 * a stall timeout is not retried: it fails closed as `upstream_timeout`. After the last retry the
 * failing answer is returned for the caller to report.
 */
export async function exchange(url: URL, init: ExchangeInit, policy: HttpPolicy): Promise<HttpResponse> {
  const replayable = !(init.body instanceof ReadableStream);
  const retries = replayable ? policy.retry.retries : 0;
  for (let attempt = 0; ; attempt++) {
    let res: HttpResponse;
    try {
      res = await exchangeOnce(url, init, policy);
    } catch (err) {
      if (err instanceof FerryError) throw err;
      if (init.signal?.aborted) throw abortReason(init.signal, init.where);
      if (isConnectionError(err) && attempt < retries) {
        await backoff(attempt + 1, policy, init);
        continue;
      }
      const what = replayable ? `could not reach ${url.host}` : `the transfer to ${url.host} broke off`;
      throw new FerryError("upstream_failed", `${init.where}: ${what}`, { cause: err });
    }
    if (!isRetryableStatus(res.status) || attempt >= retries) return res;
    await res.discard();
    await backoff(attempt + 1, policy, init, res.headers.get("retry-after"));
  }
}
