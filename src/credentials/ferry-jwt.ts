import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../common/clock.ts";
import { b64urlJson, signJws } from "../identity/jws.ts";
import { FERRY_TOKEN_ALG, type FerryKeySet } from "./keyset.ts";
import { type CredentialMinter, type IssuedCredential, type MintRequest, TOKEN_TYPES } from "./ports.ts";

/** Options of {@link FerryJwtMinter}. */
export interface FerryJwtMinterOptions {
  keys: FerryKeySet;
  /** `server.publicUrl`: the `iss` of every token Ferry mints. */
  issuer: string;
  /** Gives `iat`, `nbf` and `exp`. */
  clock?: Clock;
}

/**
 * Mints `ferry-jwt` credentials: ES256 JWTs signed with Ferry's key. `sub` is the pipeline's own
 * subject; `act` (RFC 8693 §4.1) names the original issuer and subject; `aud` is the credential's
 * audience (default: its name); `environment` and `credential` say what it was minted for.
 */
export class FerryJwtMinter implements CredentialMinter {
  readonly #keys: FerryKeySet;
  readonly #issuer: string;
  readonly #clock: Clock;
  /** The protected header never changes for a key set: encode it once. */
  readonly #header: string;

  constructor(options: FerryJwtMinterOptions) {
    this.#keys = options.keys;
    this.#issuer = options.issuer;
    this.#clock = options.clock ?? systemClock;
    this.#header = b64urlJson({ alg: FERRY_TOKEN_ALG, kid: options.keys.current.kid, typ: "JWT" });
  }

  async mint({ credential, token }: MintRequest): Promise<IssuedCredential> {
    const iat = Math.floor(this.#clock.now() / 1000);
    const lifetime = Math.max(1, Math.floor(credential.ttl / 1000));
    const jti = randomUUID();
    const payload = b64urlJson({
      iss: this.#issuer,
      sub: token.subject,
      aud: credential.audience ?? credential.name,
      act: { iss: token.issuer.url, sub: token.subject },
      environment: credential.environment,
      credential: credential.name,
      jti,
      iat,
      nbf: iat,
      exp: iat + lifetime,
    });
    const accessToken = await signJws(
      `${this.#header}.${payload}`,
      FERRY_TOKEN_ALG,
      this.#keys.current.signKey,
    );
    return {
      accessToken,
      issuedTokenType: TOKEN_TYPES.jwt,
      tokenType: "Bearer",
      expiresIn: lifetime,
      expiresAt: (iat + lifetime) * 1000,
      id: jti,
    };
  }
}
