import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import { LeaseBusyError, LeaseLostError } from "../store/leases.ts";
import type { Store } from "../store/store.ts";
import type { PromotionEngine } from "./engine.ts";
import type { PromotionStore } from "./store.ts";

/** How the worker runs (`promotion.*` in the config). */
export interface WorkerOptions {
  /** Look for work this often even when not woken (other replicas' requests), ms. */
  pollInterval: number;
  /** The lease per (app, environment), ms; renewed every third of it. */
  leaseTtl: number;
  /** Pairs worked on at once. */
  concurrency: number;
}

/** What the worker is built from. */
export interface WorkerDeps {
  store: Store;
  promotions: PromotionStore;
  engine: PromotionEngine;
  clock: Clock;
  logger: Logger;
  options: WorkerOptions;
}

const DUE_PAIRS_PER_PASS = 1000;

/** The lease name of one (app, environment): one worker in the whole deployment works on it at a time. */
export function pairLease(app: string, environment: string): string {
  return `promotion:${app}/${environment}`;
}

/**
 * The promotion worker inside `ferry serve`. It claims (app, environment) pairs with work due under
 * a fenced lease per pair (`store.withLease`, not waited for: a pair another replica holds is
 * skipped, the equivalent of `FOR UPDATE SKIP LOCKED`), and wakes on new requests
 * ({@link PromotionWorker.wake}), at the next gate deadline (soak or freeze end, expiry), and every
 * `pollInterval` as a fallback. On PostgreSQL several replicas share the work; on SQLite one process
 * runs it.
 */
export class PromotionWorker {
  readonly #deps: WorkerDeps;
  readonly #active = new Map<string, Promise<void>>();
  /** Pairs another replica held when last tried: not tried again before this time (no spinning on them). */
  readonly #busyUntil = new Map<string, number>();
  #wakeUp = new AbortController();
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Wakes the loop now (a new request, a cancellation). */
  wake(): void {
    this.#wakeUp.abort();
  }

  /** Stops claiming work and waits for the pairs in progress (their leases are released). */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.wake();
    await this.#loop;
    await Promise.allSettled([...this.#active.values()]);
  }

  /** One pass: starts work on every due pair not already in progress here, up to `concurrency`. */
  async tick(): Promise<number | undefined> {
    const { promotions, clock, options } = this.#deps;
    // Generous: pairs another replica holds come back too, and must not crowd out the rest.
    const due = await promotions.duePairs(clock.now(), DUE_PAIRS_PER_PASS);
    for (const pair of due) {
      if (this.#active.size >= options.concurrency || this.#stopping.signal.aborted) break;
      const key = pairLease(pair.app, pair.environment);
      if (this.#active.has(key) || (this.#busyUntil.get(key) ?? 0) > clock.now()) continue;
      this.#busyUntil.delete(key);
      const work = this.#work(pair.app, pair.environment).finally(() => {
        this.#active.delete(key);
        // A finished pair may have freed a slot or left more work: look again.
        this.wake();
      });
      this.#active.set(key, work);
    }
    return promotions.nextDue();
  }

  /** Resolves when no pair is in progress in this process (tests). */
  async idle(): Promise<void> {
    while (this.#active.size > 0) await Promise.allSettled([...this.#active.values()]);
  }

  async #work(app: string, environment: string): Promise<void> {
    const { store, engine, logger, options } = this.#deps;
    try {
      await store.withLease(
        pairLease(app, environment),
        { ttl: options.leaseTtl, wait: 0 },
        (lease, signal) =>
          // Stopping aborts the work too: the promotion resumes from its stored state on restart.
          engine.process(app, environment, lease, AbortSignal.any([signal, this.#stopping.signal])),
      );
    } catch (err) {
      if (err instanceof LeaseBusyError) {
        // Another replica works on it: leave it until the next poll.
        this.#busyUntil.set(pairLease(app, environment), this.#deps.clock.now() + options.pollInterval);
        return;
      }
      if (this.#stopping.signal.aborted) return;
      const lost = err instanceof LeaseLostError;
      logger.warn(
        { err, app, environment },
        lost ? "promotion lease lost; another worker resumes" : "promotion work failed",
      );
    }
  }

  async #run(): Promise<void> {
    const { clock, logger, options } = this.#deps;
    // This process may run with another config than the one the waiting promotions were last
    // decided under: look at each again now rather than at its old recheck time (up to maxWait).
    await this.#deps.promotions
      .wakeWaiting(clock.now())
      .catch((err: unknown) => logger.warn({ err }, "promotion worker: waking waiting promotions failed"));
    while (!this.#stopping.signal.aborted) {
      let nextDue: number | undefined;
      try {
        nextDue = await this.tick();
      } catch (err) {
        logger.warn({ err }, "promotion worker: looking for work failed");
      }
      if (this.#stopping.signal.aborted) break;
      // A deadline already past belongs to a pair in progress or held elsewhere: do not spin on it.
      const untilDue = (nextDue ?? Infinity) - clock.now();
      const pause = Math.min(options.pollInterval, untilDue > 0 ? untilDue : 200);
      const wake = this.#wakeUp;
      if (!wake.signal.aborted) await clock.sleep(pause, wake.signal).catch(() => undefined);
      if (this.#wakeUp === wake && wake.signal.aborted) this.#wakeUp = new AbortController();
    }
  }
}
