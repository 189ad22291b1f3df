import { FerryError } from "../common/errors.ts";
import { readCapped as readAllCapped, TooLargeError } from "../common/read-capped.ts";
import { hasherFor } from "./digest.ts";

/** What a byte stream must turn out to be. */
export interface Expected {
  digest: string;
  size: number;
}

/**
 * Passes a byte stream through while hashing and counting it. It errors with `digest_mismatch` as
 * soon as more than `expected.size` bytes arrive, and at the end unless the size and digest match,
 * so a consumer that writes the bytes on (an upload) fails before committing them.
 */
export function verifyingStream(
  source: ReadableStream<Uint8Array>,
  expected: Expected,
  where: string,
  onBytes?: (total: number) => void,
): ReadableStream<Uint8Array> {
  const hasher = hasherFor(expected.digest);
  let total = 0;
  const out = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength;
        if (total > expected.size) {
          throw new FerryError(
            "digest_mismatch",
            `${where}: more than the ${expected.size} bytes its descriptor declares`,
          );
        }
        hasher.update(chunk);
        onBytes?.(total);
        controller.enqueue(chunk);
      },
      flush() {
        if (total !== expected.size) {
          throw new FerryError(
            "digest_mismatch",
            `${where}: ${total} bytes where its descriptor declares ${expected.size}`,
          );
        }
        const actual = hasher.digest();
        if (actual !== expected.digest) {
          throw new FerryError(
            "digest_mismatch",
            `${where}: content hashes to ${actual}, not ${expected.digest}`,
          );
        }
      },
    }),
  );
  verified.set(out, `${expected.digest} ${expected.size}`);
  return out;
}

// Streams made by verifyingStream, so a writer does not hash the same bytes a second time.
const verified = new WeakMap<ReadableStream<Uint8Array>, string>();

/** True when `stream` came from {@link verifyingStream} with exactly these expectations. */
export function isVerifying(stream: ReadableStream<Uint8Array>, expected: Expected): boolean {
  return verified.get(stream) === `${expected.digest} ${expected.size}`;
}

/**
 * Reads a whole stream into memory, refusing (`payload_too_large`) once it passes `maxBytes`; the
 * rest is cancelled, never buffered.
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  where: string,
): Promise<Uint8Array> {
  try {
    return await readAllCapped(stream, maxBytes);
  } catch (err) {
    if (!(err instanceof TooLargeError)) throw err;
    throw new FerryError("payload_too_large", `${where}: larger than the ${maxBytes}-byte limit`, {
      extra: { limit: maxBytes },
    });
  }
}

/** A one-chunk stream over bytes already in memory. */
export function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
