import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Express } from "express";
import { AuditLog } from "./audit/log.ts";
import { auditPromotionWrites, pendingSync } from "./audit/pending.ts";
import { policyHash } from "./audit/policy-hash.ts";
import { deliveryEntry, issuerUrlsOf } from "./audit/promotion-entries.ts";
import { type Clock, systemClock } from "./common/clock.ts";
import { createLogger, type Logger } from "./common/logger.ts";
import { RateLimiter } from "./common/rate-limit.ts";
import { StartupError } from "./common/startup-error.ts";
import type { LoadedConfig } from "./config/load.ts";
import {
  createIdentityServices,
  type IdentityServiceDeps,
  type IdentityServices,
} from "./credentials/services.ts";
import { createEvidence, type Evidence } from "./evidence/create.ts";
import { countingApprovers, createGitops } from "./gitops/create.ts";
import type { DriftService } from "./gitops/drift.ts";
import { createApp } from "./http/app.ts";
import { createApprovalRouter } from "./http/approval-routes.ts";
import { createAuditRouter } from "./http/audit-routes.ts";
import { createApiAuthGuard, createAuthMiddleware, createTokenUse } from "./http/auth.ts";
import { createDriftRouter } from "./http/drift-routes.ts";
import { createEvidenceRouter } from "./http/evidence-routes.ts";
import { createHttpMetrics, createMetricsApp } from "./http/metrics.ts";
import { createPromotionRouter } from "./http/promotion-routes.ts";
import { createSignatureRouter } from "./http/signature-routes.ts";
import { createTokenRouter, tokenErrorHandler } from "./http/token-routes.ts";
import { VerificationAccess } from "./http/verification-access.ts";
import { createVerificationRouter } from "./http/verification-routes.ts";
import { createWellKnownRouter } from "./http/well-known-routes.ts";
import { createNotifications, type Notifications } from "./notifications/create.ts";
import { createPromotion, type Promotion } from "./promotion/create.ts";
import { registryPort, verifierPort } from "./promotion/ports.ts";
import { createRegistryClient } from "./registry/client.ts";
import { loadSigningKey, type SigningKey } from "./signing/keys.ts";
import { storeSigningRecords } from "./signing/records.ts";
import { SigningService } from "./signing/service.ts";
import { keySigner } from "./signing/signer.ts";
import { openStore, type Store } from "./store/store.ts";
import { createVerificationService } from "./verify/create.ts";
import type { VerificationService } from "./verify/service.ts";

/** A running Ferry service. */
export interface RunningFerry {
  /** The URL it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The URL of the internal `/metrics` listener, when `server.metricsListen` is set. */
  metricsUrl?: string;
  store: Store;
  logger: Logger;
  signingKey: SigningKey;
  /** Token verification, trust policies, token exchange and Ferry's token keys. */
  identity: IdentityServices;
  /** The hash-chained audit log (features append their decisions to it). */
  audit: AuditLog;
  /** Graceful stop: refuse new connections, drain in-flight requests (bounded), close the store. */
  close(): Promise<void>;
}

/** Options for {@link startFerry}, mostly for tests and the CLI. */
export interface StartOptions {
  logger?: Logger;
  /** Identity wiring for tests: Ferry's AWS credentials, an HTTP port, JWKS cache timing. */
  identity?: Partial<Pick<IdentityServiceDeps, "awsCredentials" | "fetcher" | "jwksTiming">>;
  /**
   * The clock of the store (in place of the database's: lease expiry), of signing, of identity
   * (token checks, JWKS cache, rate limits, minting), of verification (deadline, caches, "now"), of
   * the registry client (retry backoff, token expiry) and of the shutdown grace timer. Tests pass a
   * `FakeClock`; unset, the system clock and the database's.
   */
  clock?: Clock;
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

/** Listens on `listen` ("host:port"); the {@link StartupError} names the address and its config path. */
async function listenOn(
  app: Express,
  listen: string,
  path = "server.listen",
): Promise<{ server: Server; url: string }> {
  const { host, port } = splitListen(listen);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once("error", reject);
  }).catch((err) => {
    throw new StartupError([{ path, message: `cannot listen on ${listen}: ${(err as Error).message}` }], {
      cause: err,
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  return { server, url };
}

/** The composition root: wires config, store, keys and HTTP, then listens. */
export async function startFerry(loaded: LoadedConfig, options: StartOptions = {}): Promise<RunningFerry> {
  const { config } = loaded;
  const logger = options.logger ?? createLogger(config.log.level);
  const { key: signingKey, generated } = loadSigningKey(config.keys.signing, config.dev);
  if (generated)
    logger.warn({ keyId: signingKey.id, file: config.keys.signing }, "dev mode: generated a new signing key");
  const clock = options.clock ?? systemClock;
  const store = await openStore(config.store, options.clock ? { clock: options.clock } : {});
  const metrics = createHttpMetrics();
  const issuerUrls = issuerUrlsOf(config);
  const audit = new AuditLog({
    store,
    sync: pendingSync(issuerUrls),
    signer: keySigner(signingKey),
    origin: config.server.publicUrl,
    checkpointEvery: config.audit.checkpoint.every,
    checkpointInterval: config.audit.checkpoint.interval,
    clock,
    logger,
  });
  let identity: IdentityServices;
  let verification: VerificationService;
  let signing: SigningService;
  let promotion: Promotion;
  let evidence: Evidence;
  let drift: DriftService;
  let notifications: Notifications;
  try {
    identity = await createIdentityServices({
      ...options.identity,
      config,
      publicUrl: config.server.publicUrl,
      store,
      signingKey,
      logger,
      metrics: metrics.registry,
      clock,
      audit,
    });
    const registryClient = createRegistryClient(config, { clock });
    verification = createVerificationService(config, {
      ferryKey: signingKey.publicKey,
      readerFor: (ref) => registryClient.repositoryOf(ref),
      clock,
    });
    signing = new SigningService({
      apps: config.apps,
      appPolicies: identity.policies.apps,
      writerFor: (ref) => registryClient.repositoryOf(ref),
      signer: keySigner(signingKey),
      records: storeSigningRecords(store, clock, audit),
      withLease: (name, lease, fn) => store.withLease(name, lease, fn),
      logger,
      maxPredicateBytes: config.signing.maxPredicateBytes,
      maxAttestations: config.signing.maxAttestations,
      annotate: config.signing.annotate,
      clock,
    });
    const promotionRegistry = registryPort(
      (ref) => registryClient.repositoryOf(ref),
      config.registryClient.parallelism,
    );
    const promotionVerifier = verifierPort(verification);
    const gitops = createGitops({
      config,
      baseDir: loaded.baseDir,
      store,
      clock,
      logger,
      metrics: metrics.registry,
      // Late-bound: the approvals service is wired by createPromotion, before any step runs.
      approvers: async (p) => countingApprovers(await promotion.approvals.view(p)),
    });
    // Late-bound like GitOps: the step needs the approvals service createPromotion builds with it.
    evidence = createEvidence({
      config,
      store,
      signer: keySigner(signingKey),
      writerFor: (ref) => registryClient.repositoryOf(ref),
      audit,
      issuerUrls,
      requireHash: (env) => verification.policyHash(env),
      promotions: () => promotion.service,
      approvals: () => promotion.approvals,
    });
    promotion = createPromotion({
      config,
      appPipelines: identity.policies.apps,
      store,
      registry: promotionRegistry,
      verifier: promotionVerifier,
      clock,
      logger,
      metrics: metrics.registry,
      steps: {
        gitops: gitops.step,
        evidence: evidence.step,
      },
    });
    drift = gitops.drift({
      promotions: promotion.service,
      registry: promotionRegistry,
      verifier: promotionVerifier,
    });
    // Every promotion change writes its audit entries in its own transaction; chained after commit.
    auditPromotionWrites(promotion.store, issuerUrls, () => void audit.chainPending());
    // Hooks the outbox into the promotion store before any promotion can change.
    notifications = createNotifications({
      config,
      store,
      promotions: promotion.store,
      clock,
      logger,
      metrics: metrics.registry,
    });
    notifications.worker.onOutcome((delivery, outcome) => {
      audit
        .append(deliveryEntry(delivery, outcome))
        .catch((err: unknown) => logger.error({ err }, "auditing a notification delivery failed"));
    });
    // Each start with a config is an entry: which policy this process decides by.
    await audit.append({
      type: "config_loaded",
      actor: "ferry",
      subject: loaded.file,
      outcome: "loaded",
      data: {
        policyHash: policyHash(config),
        keyId: signingKey.id,
        environments: Object.fromEntries(
          config.environments.map((e) => [e.name, verification.policyHash(e.name) ?? null]),
        ),
      },
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  for (const warning of identity.warnings) logger.warn(warning, "risky trust policy");

  let shuttingDown = false;
  // Which calls spend their token is each route's choice (docs/identity.md).
  const tokenUse = createTokenUse(identity.replay);
  const app = createApp({
    logger,
    metrics,
    openapi: openapiText(),
    bodyLimit: config.server.bodyLimit,
    jsonDepth: config.server.jsonDepth,
    serveMetrics: config.server.metricsListen === undefined,
    trustProxy: config.server.trustProxy,
    readiness: () => store.ping(),
    isShuttingDown: () => shuttingDown,
    apiGuard: createApiAuthGuard(createAuthMiddleware({ verifier: identity.apiVerifier })),
    routers: [
      createWellKnownRouter(identity.keys, config.server.publicUrl),
      createTokenRouter(identity.exchange),
      // Body-parser failures under /v1/token happen before any router and must still answer in
      // RFC 6749 form; an arity-4 function mounted with app.use is an error handler, so it goes here.
      tokenErrorHandler,
      createVerificationRouter({
        service: verification,
        // The apps' pipelines compiled once at load, shared with signing.
        access: new VerificationAccess({
          apps: config.apps,
          appPolicies: identity.policies.apps,
          readers: config.verification.readers,
        }),
        limiter: new RateLimiter({ clock }),
        rate: { requests: config.verification.rateLimit.requests, perMs: config.verification.rateLimit.per },
        tokenUse,
        audit,
      }),
      createSignatureRouter(signing, tokenUse),
      createAuditRouter({ log: audit, readers: config.audit.readers, tokenUse }),
      createPromotionRouter(promotion.service, tokenUse, (p) => promotion.approvals.view(p)),
      createDriftRouter(drift, tokenUse),
      createApprovalRouter(promotion.approvals, tokenUse),
      createEvidenceRouter({ evidence: evidence.service, policies: evidence.policies, tokenUse }),
    ],
  });

  let server: Server;
  let url: string;
  let metricsServer: Server | undefined;
  let metricsUrl: string | undefined;
  try {
    ({ server, url } = await listenOn(app, config.server.listen));
    if (config.server.metricsListen !== undefined) {
      ({ server: metricsServer, url: metricsUrl } = await listenOn(
        createMetricsApp(metrics, logger),
        config.server.metricsListen,
        "server.metricsListen",
      ).catch(async (err) => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        throw err;
      }));
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  logger.info({ url, metricsUrl, store: store.engine, dev: config.dev }, "ferry listening");
  promotion.worker.start();
  notifications.worker.start();
  audit.start();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      shuttingDown = true;
      // Long-polls answer now rather than hold the drain up to their wait.
      promotion.service.close();
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections that finish their last request while draining become idle; close
      // them as they do, so the drain ends as soon as the last in-flight request has been answered.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const graceOver = new AbortController();
      // The grace timer runs on the injected clock (tests move it); a rejection is its abort, once
      // the drain has finished first.
      void clock.sleep(config.server.shutdownGrace, graceOver.signal).then(
        () => server.closeAllConnections(),
        () => undefined,
      );
      await drained;
      clearInterval(sweep);
      await promotion.close();
      await notifications.worker.stop();
      // After the promotions, whose last decisions may still be appended; before the store.
      await audit.close().catch((err: unknown) => logger.error({ err }, "flushing the audit log failed"));
      graceOver.abort();
      if (metricsServer !== undefined) {
        // Scrapes are short and need no drain; stopping them last keeps the shutdown observable.
        metricsServer.closeAllConnections();
        await new Promise((resolve) => metricsServer.close(resolve));
      }
      await store.close();
      logger.info("ferry stopped");
    })();
    return closing;
  };
  return {
    url,
    ...(metricsUrl === undefined ? {} : { metricsUrl }),
    store,
    logger,
    signingKey,
    identity,
    audit,
    close,
  };
}
