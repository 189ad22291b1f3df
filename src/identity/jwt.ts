import { z } from "zod";
import { IdentityError } from "./errors.ts";

/** The largest token Ferry reads, in bytes; checked before any parsing. */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** Three non-empty base64url segments: an unsigned token (`alg: none`, empty signature) fails here. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Headers that name where a key comes from. Ferry takes keys only from an issuer's registered JWKS,
 * so a token that carries any of these is refused outright rather than partly trusted; `crit` is
 * refused because Ferry implements no critical extension.
 */
const FORBIDDEN_HEADERS = ["jwk", "jku", "x5u", "x5c", "crit"] as const;

const headerSchema = z.looseObject({
  alg: z.string().min(1).max(32),
  kid: z.string().min(1).max(512).optional(),
  typ: z.string().max(64).optional(),
});

/** A JWT's protected header, parsed. */
export type JwtHeader = z.infer<typeof headerSchema>;

/** A compact JWT split and decoded, signature not yet checked. */
export interface DecodedJwt {
  header: JwtHeader;
  /** The payload as parsed JSON: untrusted until the signature is verified. */
  payload: Record<string, unknown>;
}

function decodeSegment(segment: string, what: string): unknown {
  const text = Buffer.from(segment, "base64url").toString("utf8");
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new IdentityError("token_malformed", `the token's ${what} is not JSON`, { cause });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Splits and decodes a compact JWS without verifying it: size first (before anything is parsed),
 * then shape, then header rules. Throws {@link IdentityError} (`token_too_large`, `token_malformed`,
 * `header_not_allowed`).
 */
export function decodeJwt(token: string): DecodedJwt {
  if (token.length > MAX_TOKEN_BYTES) {
    throw new IdentityError("token_too_large", `the token is larger than ${MAX_TOKEN_BYTES} bytes`);
  }
  if (!COMPACT_JWS.test(token)) {
    throw new IdentityError(
      "token_malformed",
      "the token is not a signed JWT (three non-empty base64url segments)",
    );
  }
  const [h, p] = token.split(".") as [string, string, string];
  const rawHeader = decodeSegment(h, "header");
  if (!isPlainObject(rawHeader))
    throw new IdentityError("token_malformed", "the token's header is not an object");
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(rawHeader, name)) {
      throw new IdentityError(
        "header_not_allowed",
        `the token's header carries "${name}", which Ferry never trusts`,
      );
    }
  }
  const header = headerSchema.safeParse(rawHeader);
  if (!header.success) {
    throw new IdentityError("token_malformed", "the token's header has no usable `alg` or `kid`", {
      cause: header.error,
    });
  }
  const payload = decodeSegment(p, "payload");
  if (!isPlainObject(payload))
    throw new IdentityError("token_malformed", "the token's payload is not an object");
  return { header: header.data, payload };
}
