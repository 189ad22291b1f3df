import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

/** Loopback address every test server binds to: tests never listen on another interface. */
export const LOOPBACK = "127.0.0.1";

/**
 * Asks the kernel for a free TCP port on 127.0.0.1 (listen on port 0, read it, close).
 * Another process could take the port before the caller binds it; the window is tiny on a test machine.
 */
export async function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("could not read the port of a probe listener"));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Options shared by the wait helpers. */
export interface WaitOptions {
  /** How long to keep trying before giving up (default 15 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /**
   * Checked before every attempt: when it returns a string, waiting stops at once with that as the error.
   * Servers pass "the process exited" here so a crash fails fast instead of waiting out the deadline.
   */
  abort?: () => string | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until a TCP connection to host:port succeeds, or throws once the deadline passes. */
export async function waitForPort(port: number, opts: WaitOptions & { host?: string } = {}): Promise<void> {
  const host = opts.host ?? LOOPBACK;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let lastError = "";
  for (;;) {
    const aborted = opts.abort?.();
    if (aborted !== undefined) throw new Error(`waiting for ${host}:${port}: ${aborted}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", (err) => {
        lastError = err.message;
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${host}:${port} (${lastError})`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

/**
 * Waits until `url` answers over HTTP. Any status counts as "up" unless `accept` says otherwise:
 * a registry with auth answers /v2/ with 401, and that already proves it is serving.
 * Returns the status of the accepted response.
 */
export async function waitForHttp(
  url: string,
  opts: WaitOptions & { accept?: (status: number) => boolean } = {},
): Promise<number> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const accept = opts.accept ?? (() => true);
  let last = "";
  for (;;) {
    const aborted = opts.abort?.();
    if (aborted !== undefined) throw new Error(`waiting for ${url}: ${aborted}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (accept(res.status)) return res.status;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${url} (${last})`);
    await sleep(opts.intervalMs ?? 50);
  }
}

/** A running TCP relay; see {@link startRecordingRelay}. */
export interface RecordingRelay {
  /** `127.0.0.1:PORT`: the registry host of references that go through the relay. */
  host: string;
  /** The client connections that carried a chunk `carries` matched, once per matching chunk (a live array). */
  carriers: Socket[];
  /** Stops listening and destroys every recorded connection. */
  stop(): void;
}

/**
 * Starts a TCP relay on loopback to `upstreamUrl`'s host and port that records which client
 * connections carried a request: every chunk a client sends is passed to `carries`, and the client
 * socket is recorded when it returns true. A test can then wait for exactly that connection to close
 * (an aborted read releases its connection). Either side closing or failing closes both.
 */
export async function startRecordingRelay(
  upstreamUrl: string,
  carries: (chunk: Buffer) => boolean,
): Promise<RecordingRelay> {
  const target = new URL(upstreamUrl);
  const carriers: Socket[] = [];
  const relay = createServer((socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    socket.pipe(upstream).pipe(socket);
    socket.on("data", (chunk: Buffer) => {
      if (carries(chunk)) carriers.push(socket);
    });
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  relay.listen(0, LOOPBACK);
  await once(relay, "listening");
  return {
    host: `${LOOPBACK}:${(relay.address() as AddressInfo).port}`,
    carriers,
    stop() {
      relay.close();
      for (const s of carriers) s.destroy();
    },
  };
}
