import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import { PollLoop } from "../common/poll-loop.ts";
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
  readonly #loop: PollLoop;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
    const { clock, logger, options } = deps;
    this.#loop = new PollLoop({
      clock,
      pollInterval: options.pollInterval,
      tick: () => this.tick(),
      onError: (err) => logger.warn({ err }, "promotion worker: looking for work failed"),
      // This process may run with another config than the one the waiting promotions were last
      // decided under: look at each again now rather than at its old recheck time (up to maxWait).
      first: () =>
        deps.promotions.wakeWaiting(clock.now()).then(
          () => undefined,
          (err: unknown) => logger.warn({ err }, "promotion worker: waking waiting promotions failed"),
        ),
    });
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop.start();
  }

  /** Wakes the loop now (a new request, a cancellation). */
  wake(): void {
    this.#loop.wake();
  }

  /** Stops claiming work and waits for the pairs in progress (their leases are released). */
  async stop(): Promise<void> {
    await this.#loop.stop();
    await Promise.allSettled([...this.#active.values()]);
  }

  /** One pass: starts work on every due pair not already in progress here, up to `concurrency`. */
  async tick(): Promise<number | undefined> {
    const { promotions, clock, options } = this.#deps;
    // Generous: pairs another replica holds come back too, and must not crowd out the rest.
    const due = await promotions.duePairs(clock.now(), DUE_PAIRS_PER_PASS);
    for (const pair of due) {
      if (this.#active.size >= options.concurrency || this.#loop.stopping.aborted) break;
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
          engine.process(app, environment, lease, AbortSignal.any([signal, this.#loop.stopping])),
      );
    } catch (err) {
      if (err instanceof LeaseBusyError) {
        // Another replica works on it: leave it until the next poll.
        this.#busyUntil.set(pairLease(app, environment), this.#deps.clock.now() + options.pollInterval);
        return;
      }
      if (this.#loop.stopping.aborted) return;
      const lost = err instanceof LeaseLostError;
      logger.warn(
        { err, app, environment },
        lost ? "promotion lease lost; another worker resumes" : "promotion work failed",
      );
    }
  }
}
