/**
 * What {@link readCapped} throws when a body passes its limit. Callers map it to their own error
 * (a `FerryError` for registries, a `FetchError` for issuers), so the reason reaches the caller in
 * its module's terms.
 */
export class TooLargeError extends Error {
  override name = "TooLargeError";
  /** The limit that was passed, in bytes. */
  readonly limit: number;
  constructor(limit: number) {
    super(`larger than the ${limit}-byte limit`);
    this.limit = limit;
  }
}

/**
 * Reads a whole stream into memory, refusing ({@link TooLargeError}) once it passes `maxBytes`: the
 * rest is cancelled, never buffered, so a hostile or broken peer cannot make Ferry hold more than
 * the limit. Errors of the stream itself pass through unchanged.
 */
export async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new TooLargeError(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
