import type { FerryConfig } from "../config/schema.ts";
import type { VerifiedToken } from "../identity/verifier.ts";

/** A credential as configured (`credentials[]` of ferry.yaml). */
export type CredentialConfig = FerryConfig["credentials"][number];

/** RFC 8693 token type URIs Ferry uses. */
export const TOKEN_TYPES = {
  idToken: "urn:ietf:params:oauth:token-type:id_token",
  jwt: "urn:ietf:params:oauth:token-type:jwt",
  accessToken: "urn:ietf:params:oauth:token-type:access_token",
} as const;

/** The `issued_token_type` of each credential type. */
export const ISSUED_TOKEN_TYPE = {
  "ferry-jwt": TOKEN_TYPES.jwt,
  "aws-sts": TOKEN_TYPES.accessToken,
} as const satisfies Record<CredentialConfig["type"], string>;

/** The RFC 8693 grant type of `POST /v1/token`. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

/** What a minter gets: the credential, the verified pipeline token, and the raw token for pass-through. */
export interface MintRequest {
  credential: CredentialConfig;
  token: VerifiedToken;
  /** The subject token as presented; only the web-identity mode passes it on, to STS. */
  subjectToken: string;
  requestId: string;
}

/** AWS session credentials, as the token endpoint returns them. */
export interface AwsSessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO 8601. */
  expiration: string;
}

/** A minted credential, ready to be answered. */
export interface IssuedCredential {
  accessToken: string;
  issuedTokenType: string;
  /** `Bearer` for a token usable as such; RFC 8693's `N_A` otherwise. */
  tokenType: "Bearer" | "N_A";
  /** Seconds until it expires. */
  expiresIn: number;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** An identifier for the audit record (a JWT's `jti`, an STS access key id): never the secret. */
  id: string;
  aws?: AwsSessionCredentials | undefined;
}

/** Mints one type of credential (`ferry-jwt`, `aws-sts`). Throws IdentityError on refusal. */
export interface CredentialMinter {
  mint(request: MintRequest): Promise<IssuedCredential>;
}
