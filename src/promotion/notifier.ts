/**
 * In-process change notices per promotion, so a long-poll in this process answers as soon as the
 * worker (or another request) stores a change; changes made by other replicas are found by the
 * long-poll's own polling.
 */
export class PromotionNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Wakes everyone waiting on `id`. */
  changed(id: string): void {
    const waiters = this.#waiters.get(id);
    if (waiters === undefined) return;
    this.#waiters.delete(id);
    for (const wake of waiters) wake();
  }

  /** Resolves at the next change of `id`, or when `signal` aborts (never rejects). */
  next(id: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let waiters = this.#waiters.get(id);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(id, waiters);
      }
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const set = this.#waiters.get(id);
        set?.delete(wake);
        if (set?.size === 0) this.#waiters.delete(id);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
