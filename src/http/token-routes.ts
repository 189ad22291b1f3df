import { type ErrorRequestHandler, type Response, Router } from "express";
import { z } from "zod";
import { isFerryError } from "../common/errors.ts";
import type { ExchangeParams, TokenExchangeService } from "../credentials/exchange.ts";
import { isIdentityError, type OAuthErrorCode } from "../identity/errors.ts";

const param = z.string().max(4096).optional();

/**
 * The parameters of RFC 8693 §2.1, in form or JSON encoding. Unknown parameters are ignored
 * (RFC 6749 §3.2); a repeated one arrives as a list and is refused (RFC 6749 §3.1).
 */
const tokenRequest = z.looseObject({
  grant_type: param,
  subject_token: z.string().optional(),
  subject_token_type: param,
  audience: param,
  requested_token_type: param,
  resource: param,
  scope: param,
  actor_token: z.string().optional(),
  actor_token_type: param,
});

function requestIdOf(res: Response): string {
  return String(res.locals.requestId ?? "");
}

/** Writes an RFC 6749 §5.2 error: `{error, error_description}` plus Ferry's reason code and request id. */
function sendOAuthError(
  res: Response,
  status: number,
  error: OAuthErrorCode,
  description: string,
  reason: string,
  retryAfterSeconds?: number,
): void {
  if (retryAfterSeconds !== undefined) res.setHeader("Retry-After", String(retryAfterSeconds));
  res
    .status(status)
    .set("Pragma", "no-cache")
    .json({ error, error_description: description, reason, request_id: requestIdOf(res) });
}

/**
 * Answers every failure under `/v1/token` in RFC 6749 form, never as a problem document: errors of
 * the exchange, and body-parser failures that happen before the route (mount it as an error
 * handler of the app too). Anything else passes on.
 */
export const tokenErrorHandler: ErrorRequestHandler = (err, req, res, next) => {
  if (req.path !== "/v1/token" || res.headersSent) {
    next(err);
    return;
  }
  if (isIdentityError(err)) {
    sendOAuthError(res, err.oauthStatus, err.oauthError, err.message, err.reason, err.retryAfterSeconds);
    return;
  }
  // Body-parser failures arrive as FerryErrors (src/http/body.ts): a 4xx is the client's fault.
  if (isFerryError(err) && err.status < 500) {
    const status = err.status === 413 || err.status === 415 ? err.status : 400;
    sendOAuthError(res, status, "invalid_request", err.message, "request_invalid");
    return;
  }
  req.log?.error({ err }, "token endpoint failed");
  sendOAuthError(res, 500, "server_error", "an internal error occurred; quote the request id", "internal");
};

/**
 * `POST /v1/token`: RFC 8693 token exchange. Parses the body, calls the exchange service, shapes
 * the answer; every decision is the service's.
 */
export function createTokenRouter(service: TokenExchangeService): Router {
  const router = Router();
  router.post("/v1/token", async (req, res) => {
    const parsed = tokenRequest.safeParse(req.body ?? {});
    const input: ExchangeParams | { unreadable: string } = parsed.success
      ? parsed.data
      : { unreadable: "each parameter must appear once, as a string" };
    const result = await service.exchange(input, { requestId: requestIdOf(res) });
    // Written directly rather than with res.json: Express would add an ETag, a hash of a body that
    // holds a single-use credential, answering a POST whose response is never cached (no-store),
    // and that costs more per exchange than the rest of the response.
    const body = JSON.stringify({
      access_token: result.accessToken,
      issued_token_type: result.issuedTokenType,
      token_type: result.tokenType,
      expires_in: result.expiresIn,
      ...(result.aws === undefined ? {} : { aws: result.aws }),
    });
    res.statusCode = 200;
    res.setHeader("Pragma", "no-cache");
    res.setHeader("Content-Type", "application/json; charset=utf-8");
    res.setHeader("Content-Length", Buffer.byteLength(body));
    res.end(body);
  });
  router.all("/v1/token", (_req, res) => {
    res.setHeader("Allow", "POST");
    sendOAuthError(res, 405, "invalid_request", "the token endpoint accepts only POST", "request_invalid");
  });
  router.use(tokenErrorHandler);
  return router;
}
