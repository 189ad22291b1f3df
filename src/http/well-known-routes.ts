import { Router } from "express";
import type { FerryKeySet } from "../credentials/keyset.ts";
import { FERRY_TOKEN_ALG } from "../credentials/keyset.ts";
import { TOKEN_EXCHANGE_GRANT } from "../credentials/ports.ts";

/** How long relying parties may cache Ferry's discovery document and JWKS. */
const PUBLIC_MAX_AGE_SECONDS = 300;

/**
 * Ferry as an OIDC issuer: `/.well-known/openid-configuration` and `/.well-known/jwks.json`, so a
 * relying party can verify the `ferry-jwt` credentials Ferry mints. Both documents are public and
 * cacheable; the JWKS lists the current key and any previous keys still within their tokens' life.
 */
export function createWellKnownRouter(keys: FerryKeySet, publicUrl: string): Router {
  const router = Router();
  const discovery = {
    issuer: publicUrl,
    jwks_uri: `${publicUrl}/.well-known/jwks.json`,
    token_endpoint: `${publicUrl}/v1/token`,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    response_types_supported: ["id_token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [FERRY_TOKEN_ALG],
    token_endpoint_auth_methods_supported: ["none"],
    claims_supported: ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "act", "environment", "credential"],
  };
  const cacheable = `public, max-age=${PUBLIC_MAX_AGE_SECONDS}`;
  router.get("/.well-known/openid-configuration", (_req, res) => {
    res.set("Cache-Control", cacheable).json(discovery);
  });
  router.get("/.well-known/jwks.json", (_req, res) => {
    res.set("Cache-Control", cacheable).json(keys.jwks());
  });
  return router;
}
