/**
 * Wall-clock arithmetic in an IANA time zone, with no dependency beyond `Intl`: the offset of a
 * zone at an instant, and "this local time plus a duration" resolved back to an instant. Freeze
 * windows are written in local time ("Friday 16:00 for 64h ends Monday 08:00"), so their length is
 * wall-clock time, not elapsed time: across a daylight-saving change the two differ by an hour.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    // Throws a RangeError for an unknown zone; the config schema checks zones with isTimeZone first.
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `name` is a time zone this runtime knows (an IANA name such as `Europe/Berlin`, or `UTC`). */
export function isTimeZone(name: string): boolean {
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at `instant`, in milliseconds (Berlin in summer: +7 200 000). */
export function offsetAt(instant: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  const whole = instant - (((instant % 1000) + 1000) % 1000);
  const local = Date.UTC(
    parts.year!,
    parts.month! - 1,
    parts.day!,
    parts.hour!,
    parts.minute!,
    parts.second!,
  );
  return local - whole;
}

/** The local wall-clock time at `instant`, as milliseconds of a UTC-labelled clock ("naive" time). */
export function localTime(instant: number, timeZone: string): number {
  return instant + offsetAt(instant, timeZone);
}

const DAY = 86_400_000;

/**
 * The instant at which the zone's clocks show `local`. A local time that happens twice (clocks
 * turned back) resolves to the later instant, so a freeze that ends then ends late rather than
 * early (fail closed); one that never happens (clocks turned forward) resolves to the instant
 * the same distance past the gap's start, as clocks read with the offset before the change
 * (02:30 on a spring-forward night in Berlin is 03:30 CEST).
 */
export function instantOf(local: number, timeZone: string): number {
  // Real zones change their offset at most once within a day on either side.
  const before = offsetAt(local - DAY, timeZone);
  const after = offsetAt(local + DAY, timeZone);
  const valid = [...new Set([before, after])]
    .map((offset) => local - offset)
    .filter((instant) => localTime(instant, timeZone) === local);
  if (valid.length > 0) return Math.max(...valid);
  return local - before;
}

/** `instant` plus `duration` of wall-clock time in the zone ("Friday 16:00 + 64h" is Monday 08:00 local). */
export function addWallClock(instant: number, duration: number, timeZone: string): number {
  return instantOf(localTime(instant, timeZone) + duration, timeZone);
}
