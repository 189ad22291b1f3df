/**
 * Ferry's one notion of local time: what "now" is and how to wait. Code that measures durations or
 * waits takes a `Clock` as a parameter instead of calling `Date.now` or `setTimeout`, so tests drive
 * time with a {@link FakeClock} instead of sleeping. Anything compared across replicas (lease
 * expiry) uses the database's clock instead (`Store.nowMs`), never a replica's.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds; rejects with the signal's reason as soon as `signal` aborts
   * (at once when it already has).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function aborted(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** The process's wall clock and timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(aborted(signal));
      const onAbort = () => {
        clearTimeout(timer);
        reject(aborted(signal!));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

interface Sleeper {
  wakeAt: number;
  seq: number;
  resolve(): void;
}

/**
 * A clock for tests: time stands still until {@link FakeClock.advance} moves it, which wakes every
 * sleeper whose time has come, earliest first (ties in the order they fell asleep). Nothing here
 * depends on real timers, so a test of a timeout or a renewal runs the same way every time.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];
  #watchers: { count: number; resolve(): void }[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(aborted(signal));
      const sleeper: Sleeper = {
        wakeAt: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(aborted(signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(sleeper);
      this.#notify();
    });
  }

  /** How many sleepers are waiting. */
  get sleepers(): number {
    return this.#sleepers.length;
  }

  /**
   * Resolves once at least `count` sleepers are waiting: the way a test knows the code under test
   * has reached its wait (it may have done real I/O on the way) before it moves time.
   */
  whenSleeping(count = 1): Promise<void> {
    return new Promise((resolve) => {
      this.#watchers.push({ count, resolve });
      this.#notify();
    });
  }

  /**
   * Moves time forward by `ms` and wakes, in order, the sleepers due by then. Between two wake-ups
   * the woken code runs until it next waits on something other than plain promise continuations,
   * so a sleeper it starts within the window is woken too.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError("FakeClock.advance: ms must be >= 0");
    const target = this.#now + ms;
    for (;;) {
      const next = this.#sleepers
        .filter((s) => s.wakeAt <= target)
        .sort((a, b) => a.wakeAt - b.wakeAt || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      this.#now = Math.max(this.#now, next.wakeAt);
      next.resolve();
      await settle();
    }
    this.#now = target;
  }

  /**
   * Moves time forward by `ms` at once, then wakes every sleeper due by then: what a process sees
   * after a stall (a long GC pause, a stopped VM), where every timer fires late and together.
   */
  async jump(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError("FakeClock.jump: ms must be >= 0");
    this.#now += ms;
    await this.advance(0);
  }

  #notify(): void {
    const ready = this.#watchers.filter((w) => this.#sleepers.length >= w.count);
    this.#watchers = this.#watchers.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}

/** Lets pending promise continuations (not I/O) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
