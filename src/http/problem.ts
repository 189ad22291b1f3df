import type { ErrorRequestHandler, RequestHandler } from "express";
import { ERROR_CODES, type ErrorCode, FerryError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";

/** The RFC 9457 problem document Ferry answers with. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance: string;
  requestId: string;
  [extra: string]: unknown;
}

/** Builds the problem document for an error; only FerryError messages ever reach the caller. */
export function toProblem(err: FerryError, requestId: string, instance: string): Problem {
  const { status, title } = ERROR_CODES[err.code];
  return {
    ...(err.extra ?? {}),
    type: `https://ferry.dev/problems/${err.code}`,
    title,
    status,
    detail: err.message,
    code: err.code,
    instance,
    requestId,
  };
}

/** The one error middleware: every failure becomes `application/problem+json` with a stable code. */
export function problemMiddleware(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    // Body-parser failures arrive as FerryErrors already (see body.ts); anything else is a bug.
    const ferryError =
      err instanceof FerryError
        ? err
        : new FerryError("internal", "an internal error occurred; quote the request id when reporting it", {
            cause: err,
          });
    const requestId = String(res.locals.requestId ?? "");
    // `detail` is log-only: it goes on the log line here and never into the problem document.
    const detail = ferryError.detail === undefined ? {} : { detail: ferryError.detail };
    // An unexpected error (or an `internal` one) logs its stack, once, here. Another 5xx FerryError
    // is an expected failure (an issuer or registry down): its message and detail say what
    // happened, and a stack would not.
    if (ferryError !== err || ferryError.code === "internal")
      (req.log ?? logger).error({ err, code: ferryError.code, ...detail }, "request failed");
    else if (ferryError.status >= 500)
      (req.log ?? logger).warn(
        { code: ferryError.code, reason: ferryError.message, ...causeOf(ferryError), ...detail },
        "request failed",
      );
    else
      (req.log ?? logger).info(
        { code: ferryError.code, reason: ferryError.message, ...detail },
        "request refused",
      );
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res
      .status(ferryError.status)
      .type("application/problem+json")
      .json(toProblem(ferryError, requestId, req.originalUrl));
  };
}

/** The message of an expected failure's cause, for its log line (the stack says nothing more). */
function causeOf(err: FerryError): { cause?: string } {
  return err.cause instanceof Error ? { cause: err.cause.message.slice(0, 500) } : {};
}

/** Answers unknown routes with a 404 problem. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new FerryError("not_found", `no route for ${req.method} ${req.path}; see /openapi.yaml`));
};
