import { describe, expect, it } from "vitest";
import { readCapped, TooLargeError } from "../../src/common/read-capped.ts";

/** A stream of `chunks`, recording whether it was cancelled and how many chunks were pulled. */
function source(chunks: number[]) {
  const seen = { cancelled: false, pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      const next = chunks[seen.pulled++];
      if (next === undefined) c.close();
      else c.enqueue(new Uint8Array(next).fill(seen.pulled));
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { stream, seen };
}

describe("readCapped", () => {
  it("joins the chunks of a body within the limit, the limit itself included", async () => {
    const { stream } = source([2, 3]);
    expect([...(await readCapped(stream, 5))]).toEqual([1, 1, 2, 2, 2]);
  });

  it("refuses a body past the limit with its typed error, and cancels the rest unread", async () => {
    const { stream, seen } = source([3, 3, 3, 3]);
    const err = await readCapped(stream, 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooLargeError);
    expect((err as TooLargeError).limit).toBe(5);
    expect(seen.cancelled).toBe(true);
    expect(seen.pulled).toBeLessThan(4);
  });

  it("passes a failure of the stream itself through", async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        c.error(new Error("connection reset"));
      },
    });
    await expect(readCapped(stream, 5)).rejects.toThrow("connection reset");
  });
});
