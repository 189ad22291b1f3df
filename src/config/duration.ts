import { z } from "zod";

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Parses a duration such as `90s`, `15m`, `1h`, `1.5h` or `7d` into milliseconds.
 * Returns undefined for anything else (no bare numbers: a unit is always required, so `10` can
 * never be misread as seconds when minutes were meant).
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * UNITS[match[2]!]!;
  return Number.isFinite(value) ? Math.round(value) : undefined;
}

/** Formats milliseconds back into the largest exact unit (`900000` → `15m`). */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"] as const) {
    const size = UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A zod type for a duration string, parsed to milliseconds. */
export const duration = z
  .string()
  .meta({ description: "A duration: a number and a unit, one of ms, s, m, h, d (e.g. `15m`, `1h`)." })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({
        code: "custom",
        message: `expected a positive duration such as "15m" or "1h", got "${text}"`,
      });
      return z.NEVER;
    }
    return ms;
  });
