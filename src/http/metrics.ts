import type { RequestHandler } from "express";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";

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
