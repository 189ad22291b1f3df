import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { AuditEntry } from "./types.ts";

/**
 * RFC 8785 (JSON Canonicalization Scheme) text of a JSON value: sorted keys, no whitespace,
 * ECMAScript number and string forms. Throws on what JSON cannot hold (NaN, lone surrogates, cycles).
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("not a JSON value");
  return text;
}

/** The entry without its `hash`: the object whose canonical JSON is hashed. */
export function hashedPart(entry: Omit<AuditEntry, "hash">): Omit<AuditEntry, "hash"> {
  return {
    seq: entry.seq,
    at: entry.at,
    type: entry.type,
    actor: entry.actor,
    subject: entry.subject,
    outcome: entry.outcome,
    reason: entry.reason,
    data: entry.data,
    prev_hash: entry.prev_hash,
  };
}

/**
 * An entry's hash: SHA-256, hex, over the 64 ASCII bytes of `prev_hash` followed by the UTF-8 bytes
 * of the RFC 8785 canonical JSON of the entry without `hash` (docs/evidence.md, "Entry hash").
 */
export function entryHash(entry: Omit<AuditEntry, "hash">): string {
  return createHash("sha256")
    .update(entry.prev_hash, "ascii")
    .update(canonicalJson(hashedPart(entry)), "utf8")
    .digest("hex");
}
