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

/**
 * The six bits each base64url character encodes, by char code (the regex above already refused
 * every other character). Used only to read the spare bits of a segment's last character.
 */
const B64URL_BITS = new Uint8Array(128);
for (const [i, c] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"].entries()) {
  B64URL_BITS[c.charCodeAt(0)] = i;
}

/**
 * True when `segment` (already known to be unpadded base64url) is the one encoding of its bytes.
 * A segment of 4k+2 or 4k+3 characters ends in a character whose low 4 or 2 bits encode nothing:
 * a decoder ignores them, so setting them gives a different string with the same bytes (a "new"
 * token to anything keyed on the string). Canonical means those bits are zero; 4k+1 characters
 * cannot be base64 at all.
 */
function isCanonicalBase64url(segment: string): boolean {
  const rest = segment.length % 4;
  if (rest === 0) return true;
  if (rest === 1) return false;
  const last = B64URL_BITS[segment.charCodeAt(segment.length - 1)]!;
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

function requireCanonical(segment: string, what: string): void {
  if (!isCanonicalBase64url(segment)) {
    throw new IdentityError("token_malformed", `the token's ${what} is not canonical base64url`);
  }
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
 * then shape (three segments of unpadded base64url, each in its one canonical encoding), then
 * header rules. Throws {@link IdentityError} (`token_too_large`, `token_malformed`,
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
  const [h, p, sig] = token.split(".") as [string, string, string];
  requireCanonical(h, "header");
  requireCanonical(p, "payload");
  requireCanonical(sig, "signature");
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
