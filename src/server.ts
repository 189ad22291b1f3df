import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

import { createLogger, type Logger } from "./common/logger.ts";
import type { LoadedConfig } from "./config/load.ts";
import {
  createIdentityServices,
  type IdentityServiceDeps,
  type IdentityServices,
} from "./credentials/services.ts";
import { createApp } from "./http/app.ts";
import { createApiAuthGuard, createAuthMiddleware } from "./http/auth.ts";
import { createHttpMetrics } from "./http/metrics.ts";
import { createSignatureRouter } from "./http/signature-routes.ts";
import { createTokenRouter, tokenErrorHandler } from "./http/token-routes.ts";
import { createVerificationRouter } from "./http/verification-routes.ts";
import { createWellKnownRouter } from "./http/well-known-routes.ts";
import { createRegistryClient } from "./registry/client.ts";
import { loadSigningKey, type SigningKey } from "./signing/keys.ts";
import { storeSigningRecords } from "./signing/records.ts";
import { leaseLock, SigningService } from "./signing/service.ts";
import { keySigner } from "./signing/signer.ts";
import { openStore, type Store } from "./store/store.ts";
import { createVerificationService } from "./verify/create.ts";
import type { VerificationService } from "./verify/service.ts";

/** A running Ferry service. */
export interface RunningFerry {
  /** The URL it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  store: Store;
  logger: Logger;
  signingKey: SigningKey;
  /** Token verification, trust policies, token exchange and Ferry's token keys. */
  identity: IdentityServices;
  /** Graceful stop: refuse new connections, drain in-flight requests (bounded), close the store. */
  close(): Promise<void>;
}

/** Options for {@link startFerry}, mostly for tests and the CLI. */
export interface StartOptions {
  logger?: Logger;
  /** Identity wiring for tests: Ferry's AWS credentials, an HTTP port, cache timing, a clock. */
  identity?: Partial<Pick<IdentityServiceDeps, "awsCredentials" | "fetcher" | "jwksTiming" | "now">>;
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
  const metrics = createHttpMetrics();
  let identity: IdentityServices;
  let verification: VerificationService;
  let signing: SigningService;
  try {
    identity = await createIdentityServices({
      ...options.identity,
      config,
      publicUrl: config.server.publicUrl,
      store,
      signingKey,
      logger,
      metrics: metrics.registry,
    });
    const registryClient = createRegistryClient(config);
    verification = createVerificationService(config, {
      ferryKey: signingKey.publicKey,
      readerFor: (ref) => registryClient.repository(ref),
    });
    signing = new SigningService({
      apps: config.apps,
      appPolicies: identity.policies.apps,
      writerFor: (ref) => registryClient.repository(ref),
      signer: keySigner(signingKey),
      records: storeSigningRecords(store.db),
      lock: leaseLock(store.leases),
      logger,
      maxPredicateBytes: config.signing.maxPredicateBytes,
      maxAttestations: config.signing.maxAttestations,
      annotate: config.signing.annotate,
      now: () => new Date(),
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  for (const warning of identity.warnings) logger.warn(warning, "risky trust policy");

  let shuttingDown = false;
  const app = createApp({
    logger,
    metrics,
    openapi: openapiText(),
    bodyLimit: config.server.bodyLimit,
    trustProxy: config.server.trustProxy,
    readiness: () => store.ping(),
    isShuttingDown: () => shuttingDown,
    routers: [
      createWellKnownRouter(identity.keys, config.server.publicUrl),
      createTokenRouter(identity.exchange),
      // Body-parser failures under /v1/token happen before any router and must still answer in
      // RFC 6749 form; an arity-4 function mounted with app.use is an error handler, so it goes here.
      tokenErrorHandler,
      createApiAuthGuard(createAuthMiddleware({ verifier: identity.apiVerifier, replay: identity.replay })),
      createVerificationRouter(verification),
      createSignatureRouter(signing),
    ],
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
  return { url, store, logger, signingKey, identity, close };
}
