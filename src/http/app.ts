import express, { type ErrorRequestHandler, type Express, type Router } from "express";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import { FerryError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import type { HttpMetrics } from "./metrics.ts";
import { notFound, problemMiddleware } from "./problem.ts";
import { requestId } from "./request-id.ts";

/** What the HTTP layer needs from the rest of Ferry. */
export interface AppDeps {
  logger: Logger;
  metrics: HttpMetrics;
  /** The text of `openapi.yaml`, served as is. */
  openapi: string;
  /** Largest request body in bytes. */
  bodyLimit: number;
  trustProxy: boolean;
  /** Checks that the service can do its work (store reachable, config loaded). */
  readiness: () => Promise<void>;
  /** True once shutdown has begun: readiness fails so load balancers stop sending traffic. */
  isShuttingDown: () => boolean;
  /**
   * Feature routers mounted under `/` in order (each owns its own paths). An error handler in the
   * list handles errors raised before it, such as body-parser failures on its paths (the token
   * endpoint answers those in RFC 6749 form, not as problems).
   */
  routers?: (Router | ErrorRequestHandler)[];
}

const READINESS_TIMEOUT_MS = 2_000;

/** Builds the Express app. Routes stay thin: parse, call a service, shape the answer. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", deps.trustProxy);
  app.set("query parser", "simple");

  app.use(requestId);
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (_req, res) => String(res.locals?.requestId),
      autoLogging: {
        ignore: (req) => req.url === "/healthz" || req.url === "/readyz" || req.url === "/metrics",
      },
      serializers: {
        req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
          remoteAddress: req.remoteAddress,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );
  app.use(deps.metrics.middleware);
  app.use(
    helmet({ contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }),
  );
  app.use((_req, res, next) => {
    res.setHeader("Cache-Control", "no-store");
    next();
  });
  app.use(express.json({ limit: deps.bodyLimit, type: ["application/json", "application/*+json"] }));
  app.use(express.urlencoded({ extended: false, limit: deps.bodyLimit, parameterLimit: 100 }));

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/readyz", async (_req, res) => {
    if (deps.isShuttingDown()) throw new FerryError("unavailable", "shutting down");
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        deps.readiness(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("readiness check timed out")), READINESS_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      throw new FerryError("unavailable", "not ready: the store is not reachable", { cause: err });
    } finally {
      clearTimeout(timer);
    }
    res.json({ status: "ready" });
  });

  app.get("/metrics", async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.get("/openapi.yaml", (_req, res) => {
    res.type("application/yaml").send(deps.openapi);
  });

  for (const router of deps.routers ?? []) app.use(router);

  app.use(notFound);
  app.use(problemMiddleware(deps.logger));
  return app;
}
