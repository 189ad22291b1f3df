import express, { type RequestHandler } from "express";
import { FerryError } from "../common/errors.ts";

/** What the body parsers accept. */
export interface BodyLimits {
  /** Largest body in bytes, after decompression. */
  bytes: number;
  /** Deepest nesting of arrays and objects a JSON body may have (`server.jsonDepth`). */
  jsonDepth: number;
}

/** body-parser's `type` for a body refused by {@link checkJsonDepth} (ours; body-parser keeps it). */
const TOO_DEEP = "entity.too.deep";

class JsonTooDeep extends Error {
  readonly type = TOO_DEEP;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when the UTF-8 JSON text nests arrays and objects deeper than `limit`. One pass over the
 * bytes, no recursion and no allocation: brackets inside strings do not count (UTF-8 continuation
 * bytes are never ASCII, so a byte scan cannot mistake part of a character for a bracket). Text
 * that is not JSON may be miscounted; JSON.parse refuses it right after.
 */
export function jsonNestsDeeperThan(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) depth--;
  }
  return false;
}

/**
 * body-parser's `verify` hook for JSON: refuses a body nested deeper than `limit` before JSON.parse
 * builds it, so no route (and no JSON.stringify of a predicate) ever recurses through it.
 */
function checkJsonDepth(limit: number) {
  return (_req: unknown, _res: unknown, buf: Buffer, encoding: string | null) => {
    let utf8: Uint8Array = buf;
    if (encoding !== null && !/^utf-?8$/i.test(encoding)) {
      // Another utf-* charset (body-parser allows those for JSON): re-encode before the byte scan.
      try {
        utf8 = Buffer.from(new TextDecoder(encoding).decode(buf));
      } catch (err) {
        throw Object.assign(new Error(`unsupported charset ${encoding}`, { cause: err }), {
          type: "charset.unsupported",
          status: 415,
        });
      }
    }
    if (jsonNestsDeeperThan(utf8, limit)) throw new JsonTooDeep(`JSON nested deeper than ${limit}`);
  };
}

/**
 * Maps body-parser's failures to Ferry errors by their typed `type`, then their HTTP `status`
 * (never their message): a failure the client caused (a broken compressed stream carries only a
 * 400 status) is a 4xx; only a failure with no client status is `internal`.
 */
export function bodyParserError(err: unknown, limits: BodyLimits): FerryError {
  if (err instanceof FerryError) return err;
  const failure = (err ?? {}) as { type?: unknown; status?: unknown; body?: unknown };
  // body-parser keeps the raw body on its errors; it may hold a token (the body of /v1/token), and
  // the cause reaches the log when the error is internal.
  delete failure.body;
  const cause = { cause: err };
  switch (failure.type) {
    case "entity.parse.failed":
      return new FerryError(
        "invalid_json",
        "the request body is not valid JSON; check for trailing commas and quotes",
        cause,
      );
    case TOO_DEEP:
      return new FerryError(
        "validation_failed",
        `the JSON body nests arrays and objects more than ${limits.jsonDepth} levels deep (server.jsonDepth)`,
        cause,
      );
    case "entity.too.large":
      return new FerryError("payload_too_large", "the request body is larger than the server accepts", cause);
    case "encoding.unsupported":
      return new FerryError(
        "unsupported_media_type",
        "the request body's Content-Encoding is not supported; send it uncompressed or with gzip, deflate or br",
        cause,
      );
    case "charset.unsupported":
      return new FerryError(
        "unsupported_media_type",
        "the request body's charset is not supported; send UTF-8",
        cause,
      );
  }
  if (typeof failure.status === "number" && failure.status >= 400 && failure.status < 500) {
    return new FerryError(
      "bad_request",
      "the request body could not be read; check that it matches its Content-Encoding and Content-Length",
      cause,
    );
  }
  return new FerryError(
    "internal",
    "an internal error occurred; quote the request id when reporting it",
    cause,
  );
}

/**
 * The JSON and form body parsers, whose every failure reaches the error handlers as a
 * {@link FerryError} (see {@link bodyParserError}): the problem middleware and the token
 * endpoint's error handler then only ever see typed errors.
 */
export function createBodyParsers(limits: BodyLimits): RequestHandler[] {
  const parsers = [
    express.json({
      limit: limits.bytes,
      type: ["application/json", "application/*+json"],
      verify: checkJsonDepth(limits.jsonDepth),
    }),
    express.urlencoded({ extended: false, limit: limits.bytes, parameterLimit: 100 }),
  ];
  return parsers.map(
    (parse): RequestHandler =>
      (req, res, next) => {
        parse(req, res, (err?: unknown) => {
          if (err === undefined || err === null) next();
          else next(bodyParserError(err, limits));
        });
      },
  );
}
