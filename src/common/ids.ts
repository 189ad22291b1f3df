import crypto from "node:crypto";
import { systemClock } from "./clock.ts";

/**
 * A new record id: a UUIDv7 (RFC 9562), time-ordered, so each insert lands at the right-hand end of
 * the primary key's index instead of on a random page of it (which halves the cost of writing a
 * record once a table is larger than the cache). Every table of records (`token_exchanges`,
 * `signings`, …) uses this one scheme. The runtime's generator is used where it has one (Node 24);
 * otherwise the same layout is built here, never a UUIDv4.
 */
export const newRecordId: () => string = crypto.randomUUIDv7 ?? (() => uuidV7());

/** RFC 9562 §5.7: 48-bit Unix milliseconds, version 7, 74 random bits, variant 10. */
export function uuidV7(now: number = systemClock.now()): string {
  const bytes = crypto.randomBytes(16);
  const ms = BigInt(Math.floor(now));
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
