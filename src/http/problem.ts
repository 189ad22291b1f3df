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

/** Maps body-parser's typed failures (by their `type`, never their message) to Ferry errors. */
function fromBodyParser(err: { type?: unknown; status?: unknown }): FerryError | undefined {
  switch (err.type) {
    case "entity.parse.failed":
      return new FerryError(
        "invalid_json",
        "the request body is not valid JSON; check for trailing commas and quotes",
        { cause: err },
      );
    case "entity.too.large":
      return new FerryError("payload_too_large", "the request body is larger than the server accepts", {
        cause: err,
      });
    case "encoding.unsupported":
    case "charset.unsupported":
      return new FerryError(
        "unsupported_media_type",
        "the request body's encoding or charset is not supported; send UTF-8",
        { cause: err },
      );
    case "request.aborted":
    case "request.size.invalid":
    case "stream.encoding.set":
    case "parameters.too.many":
      return new FerryError("bad_request", "the request body could not be read", { cause: err });
    default:
      return undefined;
  }
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
    const known = err instanceof FerryError ? err : fromBodyParser(err ?? {});
    const ferryError =
      known ??
      new FerryError("internal", "an internal error occurred; quote the request id when reporting it", {
        cause: err,
      });
    const requestId = String(res.locals.requestId ?? "");
    if (ferryError.status >= 500) (req.log ?? logger).error({ err, code: ferryError.code }, "request failed");
    else (req.log ?? logger).info({ code: ferryError.code, reason: ferryError.message }, "request refused");
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

/** Answers unknown routes with a 404 problem. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new FerryError("not_found", `no route for ${req.method} ${req.path}; see /openapi.yaml`));
};
