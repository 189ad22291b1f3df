import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from "express";
import helmet from "helmet";
import { FerryError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { createBodyParsers } from "./body.ts";
import { type HttpMetrics, metricsHandler } from "./metrics.ts";
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
  /** Deepest nesting of a JSON body (`server.jsonDepth`); default 64. */
  jsonDepth?: number;
  /** Serve `/metrics` here (default); false when it has a listener of its own (`server.metricsListen`). */
  serveMetrics?: boolean;
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
  /**
   * Authenticates `/v1/*` (see `createApiAuthGuard`); mounted before the body parsers, so a request
   * without a valid token is refused before its body is read.
   */
  apiGuard?: Router;
}

declare module "http" {
  interface IncomingMessage {
    /** A logger bound to this request (its `req` in every line); see {@link accessLog}. */
    log?: Logger;
  }
}

const READINESS_TIMEOUT_MS = 2_000;

/** Paths whose requests leave no access log line (probes and scrapes). */
const UNLOGGED = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * The URL as the log shows it: the path, and `?[redacted]` for a query string. Ferry reads nothing
 * from query strings, but clients put tokens there (`?access_token=…`), and a parameter's name is
 * as much the client's choice as its value, so the whole query is withheld.
 */
export function loggedUrl(url: string): string {
  const at = url.indexOf("?");
  return at === -1 ? url : `${url.slice(0, at)}?[redacted]`;
}

/** What the access log says of a request (pino-http's `req` serializer, as Ferry configured it). */
interface LoggedRequest {
  id: string;
  method: string;
  url: string;
  remoteAddress: string | undefined;
}

const accessState = Symbol("access log");

interface AccessState {
  req: LoggedRequest;
  child?: Logger;
}

/**
 * The access log, with pino-http's lines and levels (which it replaces): when a response ends, one
 * line with `req` ({@link LoggedRequest}), `res` (`statusCode`) and `responseTime` (ms), saying
 * "request completed", "request aborted" or "request errored" (a 5xx, or a stream error, with its
 * `err`). Handlers get `req.log`, a child logger bound to `req`, made on first use: most requests
 * never log anything else, and making a child logger per request cost more than the line.
 */
function accessLog(app: Express, logger: Logger): RequestHandler {
  Object.defineProperty(app.request, "log", {
    configurable: true,
    get(this: Request & { [accessState]?: AccessState }) {
      const state = this[accessState];
      if (state === undefined) return undefined;
      state.child ??= logger.child({ req: state.req });
      return state.child;
    },
    set(this: Request, value: Logger) {
      Object.defineProperty(this, "log", { configurable: true, writable: true, value });
    },
  });
  return (req, res, next) => {
    const started = Date.now();
    const state: AccessState = {
      req: {
        id: String(res.locals.requestId),
        method: req.method,
        url: loggedUrl(req.originalUrl || req.url),
        remoteAddress: req.socket.remoteAddress,
      },
    };
    (req as Request & { [accessState]?: AccessState })[accessState] = state;
    if (UNLOGGED.has(req.url)) {
      next();
      return;
    }
    const done = (err?: unknown) => {
      res.removeListener("close", done);
      res.removeListener("finish", done);
      res.removeListener("error", done);
      const responseTime = Date.now() - started;
      const logged = { statusCode: res.statusCode };
      // A 5xx was logged with its cause where it was answered (once, with a stack only when
      // unexpected); this line only counts it. A stream error reached no handler: it has its `err`.
      if (err !== undefined || res.statusCode >= 500) {
        logger.info(
          { req: state.req, res: logged, ...(err === undefined ? {} : { err }), responseTime },
          "request errored",
        );
        return;
      }
      const msg = !req.readableAborted && res.writableEnded ? "request completed" : "request aborted";
      logger.info({ req: state.req, res: logged, responseTime }, msg);
    };
    res.on("close", done);
    res.on("finish", done);
    res.on("error", done);
    next();
  };
}

/**
 * helmet's headers, taken once: with Ferry's options (no directive is a function) helmet sets the
 * same headers on every response, so they are recorded by running it once at start-up and then
 * replayed in the same order, instead of running its fifteen middleware per request.
 */
function recordHeaders(middleware: RequestHandler): ([name: string, value: string] | [name: string])[] {
  const ops: ([name: string, value: string] | [name: string])[] = [];
  const recorder = {
    setHeader(name: string, value: unknown) {
      if (typeof value !== "string") throw new Error(`helmet set ${name} to a non-string`);
      ops.push([name, value]);
      return recorder;
    },
    removeHeader(name: string) {
      ops.push([name]);
    },
  };
  let finished = false;
  middleware({} as Request, recorder as unknown as Response, (err?: unknown) => {
    if (err !== undefined) throw err;
    finished = true;
  });
  if (!finished) throw new Error("helmet did not set its headers synchronously");
  return ops;
}

/** Builds the Express app. Routes stay thin: parse, call a service, shape the answer. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", deps.trustProxy);
  app.set("query parser", "simple");

  app.use(requestId);
  app.use(accessLog(app, deps.logger));
  app.use(deps.metrics.middleware);
  const security = recordHeaders(
    helmet({ contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }),
  );
  app.use((_req, res, next) => {
    for (const [name, value] of security) {
      if (value === undefined) res.removeHeader(name);
      else res.setHeader(name, value);
    }
    res.setHeader("Cache-Control", "no-store");
    next();
  });
  if (deps.apiGuard !== undefined) app.use(deps.apiGuard);
  app.use(createBodyParsers({ bytes: deps.bodyLimit, jsonDepth: deps.jsonDepth ?? 64 }));

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

  if (deps.serveMetrics ?? true) app.get("/metrics", metricsHandler(deps.metrics));

  app.get("/openapi.yaml", (_req, res) => {
    res.type("application/yaml").send(deps.openapi);
  });

  for (const router of deps.routers ?? []) app.use(router);

  app.use(notFound);
  app.use(problemMiddleware(deps.logger));
  return app;
}
