import { describe, expect, it } from "vitest";
import { isIdentityError } from "../../src/identity/errors.ts";
import { decodeJwt } from "../../src/identity/jwt.ts";
import { codeOf } from "../support/outcomes.ts";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** base64url of a JSON object grown with a filler field until its length is 4k + `rest`. */
function segmentOfLength(value: Record<string, unknown>, rest: 0 | 2 | 3): string {
  for (let n = 0; ; n++) {
    const out = Buffer.from(JSON.stringify({ ...value, f: "x".repeat(n) })).toString("base64url");
    if (out.length % 4 === rest) return out;
  }
}

/** The segment with its last character's lowest (spare) bit set: same bytes, another string. */
function spareBitSet(segment: string): string {
  const flipped = `${segment.slice(0, -1)}${B64URL[B64URL.indexOf(segment.at(-1)!) | 1]}`;
  expect(Buffer.from(flipped, "base64url").equals(Buffer.from(segment, "base64url"))).toBe(true);
  expect(flipped).not.toBe(segment);
  return flipped;
}

function reasonOf(token: string): string {
  try {
    decodeJwt(token);
    return "decoded";
  } catch (err) {
    return isIdentityError(err) ? err.reason : `not an IdentityError: ${String(err)}`;
  }
}

const header = (rest: 0 | 2 | 3) => segmentOfLength({ alg: "RS256", typ: "JWT" }, rest);
const payload = (rest: 0 | 2 | 3) => segmentOfLength({ iss: "https://ci.example", sub: "a" }, rest);
/** 64 bytes: 86 characters, the last one with 4 spare bits (an ES256 signature's shape). */
const SIGNATURE = Buffer.alloc(64, 7).toString("base64url");
/** 65 bytes: 87 characters, the last one with 2 spare bits. */
const SIGNATURE_4K3 = Buffer.alloc(65, 7).toString("base64url");

describe("every segment in its one canonical base64url encoding", () => {
  it.each([2, 3] as const)("segments of 4k+%i characters decode when their spare bits are zero", (rest) => {
    expect(reasonOf(`${header(rest)}.${payload(rest)}.${SIGNATURE}`)).toBe("decoded");
    expect(reasonOf(`${header(rest)}.${payload(rest)}.${SIGNATURE_4K3}`)).toBe("decoded");
  });

  it.each([
    ["header, 4k+2", () => `${spareBitSet(header(2))}.${payload(0)}.${SIGNATURE}`],
    ["header, 4k+3", () => `${spareBitSet(header(3))}.${payload(0)}.${SIGNATURE}`],
    ["payload, 4k+2", () => `${header(0)}.${spareBitSet(payload(2))}.${SIGNATURE}`],
    ["payload, 4k+3", () => `${header(0)}.${spareBitSet(payload(3))}.${SIGNATURE}`],
    ["signature, 4k+2", () => `${header(0)}.${payload(0)}.${spareBitSet(SIGNATURE)}`],
    ["signature, 4k+3", () => `${header(0)}.${payload(0)}.${spareBitSet(SIGNATURE_4K3)}`],
  ])("spare bits set in the %s: token_malformed", (_name, make) => {
    expect(reasonOf(make())).toBe("token_malformed");
  });

  it.each([
    ["padding", `${header(2)}==.${payload(0)}.${SIGNATURE}`],
    ["standard base64's + and /", `${header(0)}.${payload(0)}.${SIGNATURE.slice(0, -2)}+/`],
    ["4k+1 characters, which no bytes encode to", `${header(0)}.${payload(0)}.${SIGNATURE}AAA`],
    ["a space", `${header(0)}.${payload(0)}.${SIGNATURE} `],
  ])("%s: token_malformed", (_name, token) => {
    expect(reasonOf(token)).toBe("token_malformed");
    expect(codeOf(() => decodeJwt(token))).toBe("unauthenticated");
  });
});
