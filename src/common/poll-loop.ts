import type { Clock } from "./clock.ts";

/** What a {@link PollLoop} runs. */
export interface PollLoopOptions {
  clock: Clock;
  /** Look again this often even when not woken (work another replica queued), ms. */
  pollInterval: number;
  /** One pass; returns when the next work is due (epoch ms), if known. */
  tick: () => Promise<number | undefined>;
  /** A pass failed (the loop goes on at the next poll). */
  onError: (err: unknown) => void;
  /** Runs once before the first pass (its failure goes to `onError`). */
  first?: () => Promise<void>;
}

/**
 * The loop of a background worker inside `ferry serve`: runs a pass, then sleeps until the next work
 * is due, a wake-up ({@link PollLoop.wake}) or `pollInterval`, whichever comes first, until stopped.
 * A deadline already past belongs to work in progress or held by another replica: the loop pauses
 * 200 ms rather than spin on it. A wake-up during a pass is not lost: the next sleep ends at once.
 */
export class PollLoop {
  readonly #options: PollLoopOptions;
  #wakeUp = new AbortController();
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: PollLoopOptions) {
    this.#options = options;
  }

  /** Aborts when the loop is stopping: work in progress stops at its next step. */
  get stopping(): AbortSignal {
    return this.#stopping.signal;
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Ends the current sleep now. */
  wake(): void {
    this.#wakeUp.abort();
  }

  /** Stops after the pass in progress, if any. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { clock, pollInterval, tick, onError, first } = this.#options;
    if (first !== undefined) await first().catch(onError);
    while (!this.#stopping.signal.aborted) {
      let nextDue: number | undefined;
      try {
        nextDue = await tick();
      } catch (err) {
        onError(err);
      }
      if (this.#stopping.signal.aborted) break;
      const untilDue = (nextDue ?? Infinity) - clock.now();
      const pause = Math.min(pollInterval, untilDue > 0 ? untilDue : 200);
      const wake = this.#wakeUp;
      if (!wake.signal.aborted) await clock.sleep(pause, wake.signal).catch(() => undefined);
      if (this.#wakeUp === wake && wake.signal.aborted) this.#wakeUp = new AbortController();
    }
  }
}
