import { type Request, type RequestHandler, type Response, Router } from "express";
import { FerryError } from "../common/errors.ts";
import { IdentityError, isIdentityError } from "../identity/errors.ts";
import type { HumanPrincipal, PipelinePrincipal, Principal } from "../identity/principal.ts";
import { principalFromToken } from "../identity/principal.ts";
import type { ReplayGuard } from "../identity/replay.ts";
import type { TokenVerifier, VerifiedToken } from "../identity/verifier.ts";

/** What the auth middleware needs. */
export interface AuthDeps {
  /** Registered issuers plus Ferry's own tokens. */
  verifier: TokenVerifier;
}

/** RFC 6750 §2.1: `Bearer` and a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

const LOCALS_KEY = "authentication";

/** What the auth middleware leaves in `res.locals`, and what the route chose to do with the token. */
interface Authentication {
  principal: Principal;
  token: VerifiedToken;
  /** Set by the route's {@link TokenUse} step; until then {@link principalOf} refuses to answer. */
  use?: "consumed" | "reused";
}

function authenticationOf(res: Response): Authentication | undefined {
  return res.locals[LOCALS_KEY] as Authentication | undefined;
}

/** Logs an identity refusal and sets its RFC 6750 challenge; the problem middleware answers it. */
function refuse(req: Request, res: Response, err: unknown): void {
  if (!isIdentityError(err)) return;
  req.log?.info({ reason: err.reason, ...err.detail }, "authentication refused");
  res.setHeader(
    "WWW-Authenticate",
    err.reason === "token_missing" ? 'Bearer realm="ferry"' : 'Bearer realm="ferry", error="invalid_token"',
  );
}

/**
 * Authenticates a request from `Authorization: Bearer <token>`: a registered issuer's OIDC token or
 * a Ferry-minted one. On success the typed {@link Principal} is kept in `res.locals` for the route
 * (read it with {@link principalOf} once the route has said, with a {@link TokenUse} step, whether
 * the request spends the token); on failure the request ends as a 401 `unauthenticated` problem
 * whose `reason` says why (403 / 5xx for the rare reasons that are not about the token), with an
 * RFC 6750 `WWW-Authenticate` challenge. It never consumes the token: that is the route's decision.
 */
export function createAuthMiddleware(deps: AuthDeps): RequestHandler {
  return async (req, res, next) => {
    if (authenticationOf(res) !== undefined) {
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
      const principal = principalFromToken(token);
      res.locals[LOCALS_KEY] = { principal, token } satisfies Authentication;
      req.log?.debug(
        { principal: principal.kind, issuer: principal.issuer.name, sub: principal.subject.slice(0, 200) },
        "authenticated",
      );
      next();
    } catch (err) {
      refuse(req, res, err);
      // An IdentityError is a FerryError: the problem middleware answers it with its code and reason.
      next(err);
    }
  };
}

/**
 * The per-route choice of what a request does with its token; every authenticated route mounts one
 * of the two before its handler (without either, {@link principalOf} fails the request):
 * - `consume`, for routes that change state (signing; promotion requests and approvals): an ID
 *   token authorises one change, so a second request with it is `token_replayed` (401);
 * - `reuse`, for routes that only read (verification, reads, long-polls): the token authenticates
 *   as often as needed within its lifetime.
 */
export interface TokenUse {
  consume: RequestHandler;
  reuse: RequestHandler;
}

/** The {@link TokenUse} steps, with the replay guard that records consumed tokens. */
export function createTokenUse(replay: ReplayGuard): TokenUse {
  const consume: RequestHandler = async (req, res, next) => {
    const auth = authenticationOf(res);
    if (auth === undefined) {
      next(new FerryError("unauthenticated", "this endpoint needs a bearer token"));
      return;
    }
    try {
      if (auth.use !== "consumed") await replay.consume(auth.token);
      auth.use = "consumed";
      next();
    } catch (err) {
      refuse(req, res, err);
      next(err);
    }
  };
  const reuse: RequestHandler = (_req, res, next) => {
    const auth = authenticationOf(res);
    if (auth === undefined) {
      next(new FerryError("unauthenticated", "this endpoint needs a bearer token"));
      return;
    }
    auth.use ??= "reused";
    next();
  };
  return { consume, reuse };
}

/**
 * Guards `/v1/*` except `/v1/token` (which authenticates by its own subject token) and `GET
 * /v1/audit/checkpoint` (public: it reveals only the chain's size and head, and witnesses hold no
 * token). Give it to the app as `apiGuard` (see `AppDeps`): it runs before the body parsers, so an
 * unauthenticated caller learns nothing about how Ferry reads bodies.
 */
export function createApiAuthGuard(authenticate: RequestHandler): Router {
  const router = Router();
  router.use("/v1", (req, res, next) => {
    const publicCheckpoint =
      req.path === "/audit/checkpoint" && (req.method === "GET" || req.method === "HEAD");
    if (req.path === "/token" || publicCheckpoint) {
      next();
      return;
    }
    return authenticate(req, res, next);
  });
  return router;
}

/**
 * The authenticated caller; throws `unauthenticated` when the request did not pass the auth
 * middleware, and `internal` when the route mounted no {@link TokenUse} step (a route that has not
 * decided whether it spends the token fails closed, in its first test).
 */
export function principalOf(res: Response): Principal {
  const auth = authenticationOf(res);
  if (auth === undefined) throw new FerryError("unauthenticated", "this endpoint needs a bearer token");
  if (auth.use === undefined) {
    throw new FerryError("internal", "an internal error occurred; quote the request id when reporting it", {
      cause: new Error("the route mounts neither TokenUse.consume nor TokenUse.reuse"),
    });
  }
  return auth.principal;
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
