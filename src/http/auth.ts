import { type RequestHandler, type Response, Router } from "express";
import { FerryError } from "../common/errors.ts";
import { IdentityError, isIdentityError } from "../identity/errors.ts";
import type { HumanPrincipal, PipelinePrincipal, Principal } from "../identity/principal.ts";
import { principalFromToken } from "../identity/principal.ts";
import type { ReplayGuard } from "../identity/replay.ts";
import type { TokenVerifier } from "../identity/verifier.ts";

/** What the auth middleware needs. */
export interface AuthDeps {
  /** Registered issuers plus Ferry's own tokens. */
  verifier: TokenVerifier;
  /** State-changing requests consume their token: an ID token authorises one change. */
  replay: ReplayGuard;
}

/** Methods that change nothing, for which a token may be presented again. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** RFC 6750 §2.1: `Bearer` and a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

const LOCALS_KEY = "principal";

/**
 * Authenticates a request from `Authorization: Bearer <token>`: a registered issuer's OIDC token or
 * a Ferry-minted one. On success the typed {@link Principal} is in `res.locals` (read it with
 * {@link principalOf}); on failure the request ends as a 401 `unauthenticated` problem whose
 * `reason` says why (403 / 5xx for the rare reasons that are not about the token), with an RFC 6750
 * `WWW-Authenticate` challenge. On POST/PUT/PATCH/DELETE the token is consumed: single use.
 */
export function createAuthMiddleware(deps: AuthDeps): RequestHandler {
  return async (req, res, next) => {
    if (res.locals[LOCALS_KEY] !== undefined) {
      next();
      return;
    }
    try {
      const header = req.get("authorization");
      if (header === undefined) {
        throw new IdentityError("token_missing", "send Authorization: Bearer <OIDC ID token>");
      }
      const match = BEARER.exec(header);
      if (!match)
        throw new IdentityError("token_malformed", "the Authorization header is not `Bearer <token>`");
      const token = await deps.verifier.verify(match[1]!);
      if (!SAFE_METHODS.has(req.method)) await deps.replay.consume(token);
      const principal = principalFromToken(token);
      res.locals[LOCALS_KEY] = principal;
      req.log?.debug(
        { principal: principal.kind, issuer: principal.issuer.name, sub: principal.subject },
        "authenticated",
      );
      next();
    } catch (err) {
      if (isIdentityError(err)) {
        req.log?.info({ reason: err.reason, ...err.detail }, "authentication refused");
        res.setHeader(
          "WWW-Authenticate",
          err.reason === "token_missing"
            ? 'Bearer realm="ferry"'
            : 'Bearer realm="ferry", error="invalid_token"',
        );
      }
      // An IdentityError is a FerryError: the problem middleware answers it with its code and reason.
      next(err);
    }
  };
}

/**
 * Guards `/v1/*` except `/v1/token` (which authenticates by its own subject token). Mount it after
 * the token router and before every router that serves `/v1/*`.
 */
export function createApiAuthGuard(authenticate: RequestHandler): Router {
  const router = Router();
  router.use("/v1", (req, res, next) => {
    if (req.path === "/token") {
      next();
      return;
    }
    return authenticate(req, res, next);
  });
  return router;
}

/** The authenticated caller; throws `unauthenticated` when the request did not pass the auth middleware. */
export function principalOf(res: Response): Principal {
  const principal = res.locals[LOCALS_KEY] as Principal | undefined;
  if (principal === undefined) throw new FerryError("unauthenticated", "this endpoint needs a bearer token");
  return principal;
}

/** The caller as a pipeline; `forbidden` for a person. */
export function requirePipeline(res: Response): PipelinePrincipal {
  const principal = principalOf(res);
  if (principal.kind !== "pipeline") throw new FerryError("forbidden", "this endpoint is for pipelines");
  return principal;
}

/** The caller as a person; `forbidden` for a pipeline. */
export function requireHuman(res: Response): HumanPrincipal {
  const principal = principalOf(res);
  if (principal.kind !== "human") throw new FerryError("forbidden", "this endpoint is for people");
  return principal;
}
