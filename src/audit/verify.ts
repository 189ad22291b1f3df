import type { KeyObject } from "node:crypto";
import { verifyCheckpoint } from "./checkpoint.ts";
import { parseCheckpointBody } from "./format.ts";
import { entryHash } from "./hash.ts";
import {
  type AuditEntry,
  type ChainVerdict,
  type CheckpointBody,
  ENTRY_TYPES,
  GENESIS_HASH,
  type SegmentVerdict,
  type SignedCheckpoint,
} from "./types.ts";

const KNOWN_TYPES: ReadonlySet<string> = new Set(ENTRY_TYPES);

/**
 * Verifies a whole chain (entries from seq 1, in order), pure CPU: sequence numbers 1..n without a
 * gap, each `prev_hash` equal to the previous entry's `hash` (64 zeros for entry 1), each `hash`
 * recomputed. With a checkpoint: its signature (when `publicKey` is given; without a key the
 * checkpoint is only compared, not authenticated), that the chain reaches its `size`, and that entry
 * `size` hashes to its `head`. The first problem found names the first bad sequence number; `seq` 0
 * means the checkpoint itself is not valid.
 *
 * What each tampering looks like: an edited entry fails its own hash; a deleted entry leaves a gap;
 * two swapped entries fail the first one's hash (the hash covers `seq` and `prev_hash`); a tail cut
 * below the checkpoint's size stops short of it; a chain rewritten and re-hashed after an edit
 * differs from the checkpoint's head (located at the checkpoint's size, the last entry it proves).
 */
export function verifyChain(
  entries: readonly AuditEntry[],
  checkpoint?: Pick<SignedCheckpoint, "body" | "signature"> | CheckpointBody,
  publicKey?: KeyObject | string,
): ChainVerdict {
  let body: CheckpointBody | undefined;
  if (checkpoint !== undefined) {
    if ("signature" in checkpoint) {
      if (publicKey !== undefined) {
        const checked = verifyCheckpoint(checkpoint, publicKey);
        if (!checked.ok) return { ok: false, seq: 0, problem: checked.problem };
        body = checked.checkpoint;
      } else {
        body = parseCheckpointBody(checkpoint.body);
        if (body === undefined)
          return { ok: false, seq: 0, problem: "the checkpoint is not {origin, size, head, at}" };
      }
    } else {
      body = checkpoint;
    }
  }
  const linked = checkLinks(entries, 1, GENESIS_HASH);
  if (!linked.ok) return linked;
  const prev = linked.head;
  if (body !== undefined) {
    if (body.size > entries.length) {
      return {
        ok: false,
        seq: entries.length + 1,
        problem: `the checkpoint covers ${body.size} entries; the chain stops at ${entries.length}`,
      };
    }
    const at = body.size === 0 ? GENESIS_HASH : entries[body.size - 1]!.hash;
    if (at !== body.head) {
      return {
        ok: false,
        seq: body.size,
        problem: `entry ${body.size} does not hash to the checkpoint's head (the chain up to it was rewritten)`,
      };
    }
  }
  return { ok: true, size: entries.length, head: prev };
}

/**
 * Verifies a segment of the chain: entries `a..N` (an evidence export carries only one promotion's
 * span), pure CPU, against a checkpoint of size `N`. The segment verifies when its sequence numbers
 * run `a..N` without a gap, each `prev_hash` equals the previous entry's `hash` (entry `a`'s is taken
 * as given, and must be 64 zeros when `a` is 1), each `hash` is recomputed, and entry `N`'s hash is
 * the checkpoint's `head` (its signature checked with `publicKey`; without a key, only compared).
 *
 * Why that is sound: each hash covers the previous one, so entry `N`'s hash commits to every entry
 * of the segment and to entry `a`'s `prev_hash`. Changing, removing, adding or reordering any
 * entry of the segment changes its hash and, by the chain, every later hash up to `N`: matching the
 * signed head again would take a SHA-256 collision (or second preimage). What it does not show:
 * anything about the entries before `a`. Their existence is only committed to by entry `a`'s
 * `prev_hash`; what they said, and whether they verify, takes the chain from entry 1 (or an earlier
 * segment ending at `a - 1` whose last hash is that `prev_hash`).
 */
export function verifySegment(
  entries: readonly AuditEntry[],
  checkpoint: Pick<SignedCheckpoint, "body" | "signature"> | CheckpointBody,
  publicKey?: KeyObject | string,
): SegmentVerdict {
  let body: CheckpointBody | undefined;
  if ("signature" in checkpoint) {
    if (publicKey !== undefined) {
      const checked = verifyCheckpoint(checkpoint, publicKey);
      if (!checked.ok) return { ok: false, seq: 0, problem: checked.problem };
      body = checked.checkpoint;
    } else body = parseCheckpointBody(checkpoint.body);
    if (body === undefined)
      return { ok: false, seq: 0, problem: "the checkpoint is not {origin, size, head, at}" };
  } else body = checkpoint;
  const first = entries[0];
  if (first === undefined) return { ok: false, seq: 0, problem: "the segment has no entries" };
  const from = first.seq;
  if (!Number.isSafeInteger(from) || from < 1)
    return { ok: false, seq: 0, problem: `the segment starts at an invalid seq (${from})` };
  if (from === 1 && first.prev_hash !== GENESIS_HASH)
    return { ok: false, seq: 1, problem: "entry 1's prev_hash is not 64 zeros" };
  const linked = checkLinks(entries, from, first.prev_hash);
  if (!linked.ok) return linked;
  const prev = linked.head;
  const last = from + entries.length - 1;
  if (body.size > last)
    return {
      ok: false,
      seq: last + 1,
      problem: `the checkpoint covers ${body.size} entries; the segment stops at ${last}`,
    };
  if (body.size < last)
    return {
      ok: false,
      seq: body.size + 1,
      problem: `the segment runs past the checkpoint (size ${body.size}) to ${last}: entries after it are not proven`,
    };
  if (prev !== body.head)
    return {
      ok: false,
      seq: last,
      problem: `entry ${last} does not hash to the checkpoint's head (the segment was rewritten)`,
    };
  return { ok: true, from, size: last, head: prev };
}

/**
 * The links of entries `from..`: sequence numbers without a gap, each `prev_hash` the previous
 * entry's hash (the first's is `prev`), each hash recomputed; the last hash, or the first bad seq.
 */
function checkLinks(
  entries: readonly AuditEntry[],
  from: number,
  start: string,
): { ok: true; head: string } | { ok: false; seq: number; problem: string } {
  let prev = start;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const seq = from + i;
    if (entry.seq !== seq) {
      return {
        ok: false,
        seq,
        problem:
          entry.seq > seq
            ? `entry ${seq} is missing (the next one is ${entry.seq})`
            : `entry ${seq} is out of order (found ${entry.seq})`,
      };
    }
    if (!KNOWN_TYPES.has(entry.type))
      return { ok: false, seq, problem: `unknown entry type "${entry.type}"` };
    if (entry.prev_hash !== prev)
      return { ok: false, seq, problem: `prev_hash does not match the hash of entry ${seq - 1}` };
    let hash: string;
    try {
      hash = entryHash(entry);
    } catch (err) {
      return { ok: false, seq, problem: `cannot canonicalise the entry (${(err as Error).message})` };
    }
    if (hash !== entry.hash)
      return { ok: false, seq, problem: "the entry's hash does not match its content" };
    prev = hash;
  }
  return { ok: true, head: prev };
}
