import { describe, expect, it } from "vitest";
import { signCheckpoint } from "../../src/audit/checkpoint.ts";
import { entryHash } from "../../src/audit/hash.ts";
import { type AuditEntry, GENESIS_HASH, type SignedCheckpoint } from "../../src/audit/types.ts";
import { verifyChain, verifySegment } from "../../src/audit/verify.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { keySigner } from "../../src/signing/signer.ts";

// A segment a..N of the chain (one promotion's span in an evidence export) verifies against the
// signed checkpoint at N, and any tampering inside it is found and located.

const key = parseSigningKey(generateSigningKeyPem(), "test key");
const other = parseSigningKey(generateSigningKeyPem(), "other key");

/** A chain of `n` entries, hashed as the audit log hashes them. */
function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const body = {
      seq,
      at: 1_000 + seq,
      type: seq % 3 === 0 ? ("gate_result" as const) : ("promotion_state" as const),
      actor: "ferry" as const,
      subject: `p-${seq % 4}`,
      outcome: "waiting",
      reason: null,
      data: { n: seq },
      prev_hash: prev,
    };
    const hash = entryHash(body);
    out.push({ ...body, hash });
    prev = hash;
  }
  return out;
}

/** Re-hashes `entries` from index `from` on, as someone rewriting the chain would. */
function rehash(entries: AuditEntry[], from: number): AuditEntry[] {
  const out = entries.map((e) => ({ ...e }));
  for (let i = from; i < out.length; i++) {
    if (i > 0) out[i]!.prev_hash = out[i - 1]!.hash;
    out[i]!.hash = entryHash(out[i]!);
  }
  return out;
}

async function checkpointAt(entries: AuditEntry[], size: number, signer = key): Promise<SignedCheckpoint> {
  return signCheckpoint(
    { origin: "https://ferry.test", size, head: entries[size - 1]!.hash, at: 9_999 },
    keySigner(signer),
  );
}

describe("verifySegment", () => {
  const all = chain(30);

  it("verifies entries a..N against the checkpoint at N, from any a; the whole chain is the case a = 1", async () => {
    const cp = await checkpointAt(all, 20);
    expect(verifySegment(all.slice(11, 20), cp, key.publicKey)).toEqual({
      ok: true,
      from: 12,
      size: 20,
      head: all[19]!.hash,
    });
    expect(verifySegment(all.slice(19, 20), cp, key.publicKey)).toMatchObject({ ok: true, from: 20 });
    expect(verifySegment(all.slice(0, 20), cp, key.publicKey)).toMatchObject({ ok: true, from: 1 });
    expect(verifyChain(all.slice(0, 20), cp, key.publicKey)).toMatchObject({ ok: true });
  });

  it("finds an edited entry inside the segment, even when every later hash was recomputed", async () => {
    const cp = await checkpointAt(all, 20);
    const edited = all.slice(11, 20).map((e) => ({ ...e }));
    edited[3]!.outcome = "passed";
    expect(verifySegment(edited, cp, key.publicKey)).toMatchObject({
      ok: false,
      seq: 15,
      problem: expect.stringMatching(/hash does not match/),
    });
    // Rewritten from the edit on: consistent in itself, but no longer the signed head.
    const rewritten = rehash(edited, 3);
    expect(verifySegment(rewritten, cp, key.publicKey)).toMatchObject({
      ok: false,
      seq: 20,
      problem: expect.stringMatching(/checkpoint's head/),
    });
  });

  it("finds a deleted, a swapped, an inserted and a cut entry", async () => {
    const cp = await checkpointAt(all, 20);
    const segment = all.slice(9, 20);
    const deleted = [...segment.slice(0, 4), ...segment.slice(5)];
    expect(verifySegment(deleted, cp, key.publicKey)).toMatchObject({
      ok: false,
      seq: 14,
      problem: expect.stringMatching(/missing/),
    });
    const swapped = [...segment];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    expect(verifySegment(swapped, cp, key.publicKey)).toMatchObject({ ok: false, seq: 12 });
    // An entry of elsewhere slipped in, renumbered to fit: its prev_hash gives it away.
    const inserted = [
      ...segment.slice(0, 3),
      { ...all[25]!, seq: 13 },
      ...segment.slice(3).map((e) => ({ ...e, seq: e.seq + 1 })),
    ];
    expect(verifySegment(inserted, cp, key.publicKey)).toMatchObject({ ok: false, seq: 13 });
    expect(verifySegment(segment.slice(0, -2), cp, key.publicKey)).toMatchObject({
      ok: false,
      seq: 19,
      problem: expect.stringMatching(/stops at 18/),
    });
  });

  it("refuses a segment that runs past the checkpoint, an empty one, a forged first entry and a foreign signature", async () => {
    const cp = await checkpointAt(all, 20);
    expect(verifySegment(all.slice(10, 25), cp, key.publicKey)).toMatchObject({
      ok: false,
      seq: 21,
      problem: expect.stringMatching(/not proven/),
    });
    expect(verifySegment([], cp, key.publicKey)).toMatchObject({ ok: false, seq: 0 });
    // A whole chain rebuilt from a new entry 1: entry 1 must start from the genesis hash.
    const forged = rehash(
      all.slice(0, 20).map((e, i) => (i === 0 ? { ...e, prev_hash: "1".repeat(64) } : e)),
      0,
    );
    expect(verifySegment(forged, { ...cp.checkpoint, head: forged[19]!.hash })).toMatchObject({
      ok: false,
      seq: 1,
    });
    expect(verifySegment(all.slice(10, 20), await checkpointAt(all, 20, other), key.publicKey)).toMatchObject(
      { ok: false, seq: 0 },
    );
    // A checkpoint whose body was altered after signing.
    const altered = { ...cp, body: cp.body.replace('"size":20', '"size":19') };
    expect(verifySegment(all.slice(10, 19), altered, key.publicKey)).toMatchObject({ ok: false, seq: 0 });
  });
});
