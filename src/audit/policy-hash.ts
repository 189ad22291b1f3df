import { createHash } from "node:crypto";
import { canonicalJson } from "./hash.ts";

/**
 * Property names whose values are secrets wherever they appear in the config (registry passwords,
 * and the credentials later sections carry: git tokens, webhook secrets): hashed as `"[redacted]"`,
 * so rotating a secret does not change the policy hash and the hash reveals nothing of it.
 */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  "password",
  "secret",
  "secrets",
  "token",
  "auth",
  "apiKey",
  "privateKey",
  "clientSecret",
  "signingSecret",
]);

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      SECRET_KEYS.has(k) ? "[redacted]" : redact(v),
    ]),
  );
}

/**
 * The policy hash logged with `config_loaded`: SHA-256 hex of the RFC 8785 canonical JSON of the
 * loaded config (defaults filled in, durations in ms, paths resolved) with every secret redacted
 * ({@link SECRET_KEYS}) and the `store` section reduced to its engine (its URL may hold a
 * password, and where the store lives is not policy). It covers what Ferry decides by — issuers,
 * trust, environments, apps, credentials, readers — not the contents of the files the config
 * names (the signing key's id is logged beside it).
 */
export function policyHash(config: Record<string, unknown> & { store: object }): string {
  const { store, ...rest } = config;
  const engine = "postgres" in store ? "postgres" : "sqlite";
  return createHash("sha256")
    .update(canonicalJson({ ...(redact(rest) as object), store: engine }), "utf8")
    .digest("hex");
}
