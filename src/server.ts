import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, type Logger } from "./common/logger.ts";
import type { LoadedConfig } from "./config/load.ts";
import { createApp } from "./http/app.ts";
import { createHttpMetrics } from "./http/metrics.ts";
import { loadSigningKey, type SigningKey } from "./signing/keys.ts";
import { openStore, type Store } from "./store/store.ts";

/** A running Ferry service. */
export interface RunningFerry {
  /** The URL it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  store: Store;
  logger: Logger;
  signingKey: SigningKey;
  /** Graceful stop: refuse new connections, drain in-flight requests (bounded), close the store. */
  close(): Promise<void>;
}

/** Options for {@link startFerry}, mostly for tests and the CLI. */
export interface StartOptions {
  logger?: Logger;
}

const OPENAPI_URL = new URL("../openapi.yaml", import.meta.url);

function openapiText(): string {
  // src/server.ts and dist/server.js both sit one level below the package root.
  return readFileSync(OPENAPI_URL, "utf8");
}

function splitListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(":");
  return { host: listen.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(listen.slice(at + 1)) };
}

/** The composition root: wires config, store, keys and HTTP, then listens. */
export async function startFerry(loaded: LoadedConfig, options: StartOptions = {}): Promise<RunningFerry> {
  const { config } = loaded;
  const logger = options.logger ?? createLogger(config.log.level);
  const { key: signingKey, generated } = loadSigningKey(config.keys.signing, config.dev);
  if (generated)
    logger.warn({ keyId: signingKey.id, file: config.keys.signing }, "dev mode: generated a new signing key");
  const store = await openStore(config.store);

  let shuttingDown = false;
  const app = createApp({
    logger,
    metrics: createHttpMetrics(),
    openapi: openapiText(),
    bodyLimit: config.server.bodyLimit,
    trustProxy: config.server.trustProxy,
    readiness: () => store.ping(),
    isShuttingDown: () => shuttingDown,
  });

  const { host, port } = splitListen(config.server.listen);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once("error", reject);
  }).catch(async (err) => {
    await store.close();
    throw new Error(`cannot listen on ${config.server.listen}: ${(err as Error).message}`, { cause: err });
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url, store: store.engine, dev: config.dev }, "ferry listening");

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections that finish their last request while draining become idle; close
      // them as they do, so the drain ends as soon as the last in-flight request has been answered.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const grace = setTimeout(() => server.closeAllConnections(), config.server.shutdownGrace);
      await drained;
      clearInterval(sweep);
      clearTimeout(grace);
      await store.close();
      logger.info("ferry stopped");
    })();
    return closing;
  };
  return { url, store, logger, signingKey, close };
}
