import express, { type Express, type RequestHandler } from "express";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { Logger } from "../common/logger.ts";
import { notFound, problemMiddleware } from "./problem.ts";
import { requestId } from "./request-id.ts";

/** The Prometheus registry of one Ferry process, and the HTTP middleware that feeds it. */
export interface HttpMetrics {
  registry: Registry;
  middleware: RequestHandler;
}

/**
 * Creates a registry with process metrics and `ferry_http_request_duration_seconds` by method,
 * route template and status. Unmatched paths are labelled `unmatched`, so a scanner cannot grow
 * the label set without bound.
 */
export function createHttpMetrics(): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "ferry_" });
  const duration = new Histogram({
    name: "ferry_http_request_duration_seconds",
    help: "HTTP request duration in seconds, by method, route template and status code",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const middleware: RequestHandler = (req, res, next) => {
    const end = duration.startTimer();
    res.on("finish", () => {
      const template = req.route?.path;
      const route = typeof template === "string" ? `${req.baseUrl}${template}` : "unmatched";
      end({ method: req.method, route, status_code: String(res.statusCode) });
    });
    next();
  };
  return { registry, middleware };
}

/** `GET /metrics`: the registry in Prometheus text format. */
export function metricsHandler(metrics: HttpMetrics): RequestHandler {
  return async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}

/**
 * The app of the internal metrics listener (`server.metricsListen`): `GET /metrics` and nothing
 * else. Metrics name credentials and refusal reasons, so they belong on a port only the scraper
 * reaches; its own requests are not measured.
 */
export function createMetricsApp(metrics: HttpMetrics, logger: Logger): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(requestId);
  app.use((_req, res, next) => {
    res.setHeader("Cache-Control", "no-store");
    next();
  });
  app.get("/metrics", metricsHandler(metrics));
  app.use(notFound);
  app.use(problemMiddleware(logger));
  return app;
}
