import { createHash } from "node:crypto";
import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Paths pino blanks out wherever they appear. Tokens, keys and secrets must never be logged; to
 * identify one, log {@link fingerprint} of it instead.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['proxy-authorization']",
  "res.headers['set-cookie']",
  "*.authorization",
  "*.password",
  "*.token",
  "*.subject_token",
  "*.access_token",
  "*.id_token",
  "*.refresh_token",
  "*.secretAccessKey",
  "*.sessionToken",
  "*.privateKey",
  "*.secret",
  "*.key",
  "password",
  "token",
  "secret",
];

/** Creates the process logger: JSON lines on stdout (or `destination`), with secrets redacted. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "ferry" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** The SHA-256 of a secret, hex: safe to log, enough to correlate. */
export function fingerprint(secret: string | Uint8Array): string {
  return createHash("sha256").update(secret).digest("hex");
}
