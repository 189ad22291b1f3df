import { compileCron } from "../common/cron.ts";
import { addWallClock, offsetAt } from "../common/zoned-time.ts";

/** An absolute freeze window as written in the config (ISO 8601 with offset), end excluded. */
export interface AbsoluteWindowSpec {
  from: string;
  to: string;
}

/** A recurring freeze window: it opens at each `cron` time in `timeZone` and lasts `duration` (ms) of local time. */
export interface RecurringWindowSpec {
  cron: string;
  duration: number;
  timeZone: string;
}

/** One `environments[].freeze` entry. */
export type FreezeWindowSpec = AbsoluteWindowSpec | RecurringWindowSpec;

/** One concrete window, `[start, end)` in epoch milliseconds, and the config entry it came from. */
export interface FreezeWindow {
  start: number;
  end: number;
  /** Index of the entry in `environments[].freeze`. */
  rule: number;
}

/** Whether promotion into the environment is frozen at an instant, and until when. */
export type FreezeState =
  | { frozen: false }
  | {
      frozen: true;
      /** The window that holds the instant (the one that ends last, when several do). */
      window: FreezeWindow;
      /**
       * The end of the merged run of overlapping or abutting windows that holds the instant;
       * undefined when no end is in sight (windows that chain on for more than a year).
       */
      until: number | undefined;
    };

/** An environment's freeze windows, compiled once at config load. */
export interface FreezeCalendar {
  /** Whether `now` (epoch ms) lies in a window, and when the merged run of windows holding it ends. */
  at(now: number): FreezeState;
}

interface Rule {
  /** The window that opened last at or before `t` among those that end last: `undefined` if none. */
  latestEndingFrom(t: number): FreezeWindow | undefined;
}

function absoluteRule(spec: AbsoluteWindowSpec, rule: number): Rule {
  const window = { start: Date.parse(spec.from), end: Date.parse(spec.to), rule };
  return { latestEndingFrom: (t) => (window.start <= t ? window : undefined) };
}

// Local time can run backwards (clocks turned back) by at most this much; real zones move by
// at most two hours, once a day at most.
const BACKWARD_SPAN = 3 * 3_600_000;
// Enough to cover BACKWARD_SPAN at one start a minute (five-field cron).
const BACKWARD_STARTS = 200;

function recurringRule(spec: RecurringWindowSpec, rule: number): Rule {
  const cron = compileCron(spec.cron, spec.timeZone);
  const windowFrom = (start: number): FreezeWindow => ({
    start,
    end: addWallClock(start, spec.duration, spec.timeZone),
    rule,
  });
  return {
    latestEndingFrom(t) {
      // croner excludes a run exactly at the reference and drops milliseconds: ask from the next
      // second and keep starts at or before t.
      const reference = new Date(t - (((t % 1000) + 1000) % 1000) + 1000);
      const [latest] = cron.previousRuns(1, reference).filter((d) => d.getTime() <= t);
      if (latest === undefined) return undefined;
      let best = windowFrom(latest.getTime());
      // Window ends grow with their starts except when the clocks were turned back between two
      // starts: a window that opened in the first pass of the repeated hour can end after one that
      // opened later, in the second pass. Only then look at every start in that span.
      if (offsetAt(t - BACKWARD_SPAN, spec.timeZone) > offsetAt(t, spec.timeZone)) {
        for (const d of cron.previousRuns(BACKWARD_STARTS, reference)) {
          const start = d.getTime();
          if (start > t) continue;
          if (start < t - BACKWARD_SPAN) break;
          const w = windowFrom(start);
          if (w.end > best.end) best = w;
        }
      }
      return best;
    },
  };
}

const HORIZON = 366 * 86_400_000;
const MAX_MERGES = 1000;

/**
 * Compiles an environment's freeze windows. Every cron and zone must already have passed the
 * config schema (which compiles them the same way), so this does not fail on a validated config.
 */
export function compileFreeze(specs: readonly FreezeWindowSpec[] = []): FreezeCalendar {
  const rules = specs.map((spec, i) => ("cron" in spec ? recurringRule(spec, i) : absoluteRule(spec, i)));
  const latest = (t: number) =>
    rules
      .map((r) => r.latestEndingFrom(t))
      .reduce<FreezeWindow | undefined>(
        (a, w) => (w !== undefined && (a === undefined || w.end > a.end) ? w : a),
        undefined,
      );
  return {
    at(now) {
      const window = latest(now);
      if (window === undefined || window.end <= now) return { frozen: false };
      // Extend through windows that open before (or exactly when) the run so far ends.
      let until = window.end;
      for (let i = 0; i < MAX_MERGES; i++) {
        const next = latest(until);
        if (next === undefined || next.end <= until) return { frozen: true, window, until };
        until = next.end;
        if (until - now > HORIZON) break;
      }
      return { frozen: true, window, until: undefined };
    },
  };
}
