/**
 * Group commit: callers submit one write each and wait for it; writes submitted in the same turn of
 * the event loop go to the database as one statement. Under load this turns N round trips (and N
 * statement preparations) into one, and adds no waiting when there is no load: a batch is flushed
 * on `setImmediate`, or as soon as it is full. A failed flush fails every write in it.
 */
export class WriteBatcher<T, R> {
  readonly #flushFn: (items: readonly T[]) => Promise<readonly R[]>;
  readonly #maxBatch: number;
  #pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  constructor(flush: (items: readonly T[]) => Promise<readonly R[]>, maxBatch = 200) {
    this.#flushFn = flush;
    this.#maxBatch = maxBatch;
  }

  /** Queues one write; resolves with its own result once its batch is written. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    this.#flushFn(batch.map((b) => b.item)).then(
      (results) => {
        batch.forEach((b, i) => {
          b.resolve(results[i]!);
        });
      },
      (err: unknown) => {
        for (const b of batch) b.reject(err);
      },
    );
  }
}
