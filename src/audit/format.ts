import { z } from "zod";
import { type AuditEntry, type CheckpointBody, ENTRY_TYPES } from "./types.ts";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lower-case hex digits");
const epochMs = z.int().nonnegative();

const actorSchema = z.union([
  z.literal("ferry"),
  z.literal("anonymous"),
  z.strictObject({ issuer: z.string(), subject: z.string(), name: z.string().optional() }),
]);

/** One exported entry (a line of `GET /v1/audit`), every field required, no other field. */
export const entrySchema = z.strictObject({
  seq: z.int().positive(),
  at: epochMs,
  type: z.enum(ENTRY_TYPES),
  actor: actorSchema,
  subject: z.string(),
  outcome: z.string(),
  reason: z.string().nullable(),
  data: z.record(z.string(), z.json()),
  prev_hash: hex64,
  hash: hex64,
});

/** The signed body of a checkpoint (`cp.json`). */
export const checkpointBodySchema = z.strictObject({
  origin: z.string().min(1),
  size: z.int().nonnegative(),
  head: hex64,
  at: epochMs,
});

/** An export in JSON lines, parsed; or the first line (1-based) that is not an entry, and why. */
export type ParsedExport = { ok: true; entries: AuditEntry[] } | { ok: false; line: number; problem: string };

/** Parses an export (`GET /v1/audit` answers, concatenated): one entry per non-empty line. */
export function parseExport(text: string): ParsedExport {
  const entries: AuditEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return { ok: false, line: i + 1, problem: "not JSON" };
    }
    const parsed = entrySchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return { ok: false, line: i + 1, problem: `${issue.path.join(".") || "(entry)"}: ${issue.message}` };
    }
    entries.push(parsed.data as AuditEntry);
  }
  return { ok: true, entries };
}

/** Parses the bytes of a checkpoint body file; undefined when they are not one. */
export function parseCheckpointBody(text: string): CheckpointBody | undefined {
  try {
    const parsed = checkpointBodySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
