import type { KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { publicKeyOf, verifyCheckpoint } from "../audit/checkpoint.ts";
import { parseExport } from "../audit/format.ts";
import { AuditLog } from "../audit/log.ts";
import type { AuditEntry, ChainVerdict, SignedCheckpoint } from "../audit/types.ts";
import { verifyChain, verifySegment } from "../audit/verify.ts";
import { loadConfigFile } from "../config/load.ts";
import { loadSigningKey } from "../signing/keys.ts";
import { openStore } from "../store/store.ts";
import { CliError, type CliIo, CONFIG_OPTION_HELP, configPath, Denied } from "./io.ts";

interface VerifyOptions {
  config?: string;
  file?: string;
  checkpoint?: string;
  signature?: string;
  key?: string;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

function readKey(file: string): KeyObject {
  try {
    return publicKeyOf(readText(file, "the public key"));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`${file} is not a PEM public key`);
  }
}

/** The chain in order, read from the store in pages. */
async function readAll(log: AuditLog): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  for (;;) {
    const page = await log.read(entries.at(-1)?.seq ?? 0, 10_000);
    entries.push(...page);
    if (page.length < 10_000) return entries;
  }
}

/**
 * Older checkpoints than the latest, each checked against the chain: a rewrite is then located
 * between the last checkpoint that still matches and the first that does not.
 */
function checkOlder(
  entries: readonly AuditEntry[],
  checkpoints: readonly SignedCheckpoint[],
  key: KeyObject,
): Extract<ChainVerdict, { ok: false }> | undefined {
  for (const cp of checkpoints) {
    const checked = verifyCheckpoint(cp, key);
    if (!checked.ok)
      return { ok: false, seq: 0, problem: `checkpoint of size ${cp.checkpoint.size}: ${checked.problem}` };
    const { size, head } = checked.checkpoint;
    if (size > entries.length) continue;
    if (size > 0 && entries[size - 1]!.hash !== head)
      return {
        ok: false,
        seq: size,
        problem: `entry ${size} does not hash to the head of the checkpoint of size ${size}`,
      };
  }
  return undefined;
}

function report(io: CliIo, verdict: ChainVerdict, checkpoint: string): void {
  if (verdict.ok) {
    io.out(`audit log ok: ${verdict.size} entries, head ${verdict.head}${checkpoint}\n`);
    return;
  }
  io.out(`audit log BAD at seq ${verdict.seq}: ${verdict.problem}\n`);
  throw new Denied(`audit log bad at seq ${verdict.seq}`);
}

/**
 * Registers `ferry audit verify`: against the store of a config (the whole chain, every stored
 * checkpoint, with Ferry's key), or offline against an export (`--file`, the JSON lines of
 * `GET /v1/audit`), a checkpoint body (`--checkpoint cp.json`, its signature in `cp.json.sig` or
 * `--signature`) and Ferry's public key (`--key`). Exit 0 verified, 1 tampered (the first bad
 * sequence number is printed), 2 usage or operational error.
 */
export function registerAudit(program: Command, io: CliIo): void {
  const audit = program.command("audit").description("the hash-chained audit log");
  audit
    .command("verify")
    .description(
      "verify the audit chain and its signed checkpoint; prints size and head, or the first bad sequence number (exit 1)",
    )
    .option("-c, --config <file>", `${CONFIG_OPTION_HELP}; verifies the store it names`)
    .option("--file <export.jsonl>", "verify an export (JSON lines of GET /v1/audit) instead of the store")
    .option(
      "--checkpoint <cp.json>",
      "with --file: the checkpoint body (as GET /v1/audit/checkpoint's `body`)",
    )
    .option("--signature <cp.json.sig>", "the checkpoint's base64 signature (default: <checkpoint>.sig)")
    .option(
      "--key <ferry.pub>",
      "Ferry's PEM public key (`ferry keys export`); with --config, default: from keys.signing",
    )
    .action(async (opts: VerifyOptions) => {
      if (opts.file !== undefined) {
        await verifyExport(io, opts);
        return;
      }
      if (opts.checkpoint !== undefined || opts.signature !== undefined)
        throw new CliError("--checkpoint and --signature go with --file (the store has its own checkpoints)");
      const { config } = loadConfigFile(configPath(opts.config, io.env), io.env);
      const key =
        opts.key !== undefined ? readKey(opts.key) : loadSigningKey(config.keys.signing, false).key.publicKey;
      const store = await openStore(config.store);
      try {
        const log = new AuditLog({ store });
        const entries = await readAll(log);
        const checkpoints = await log.checkpoints();
        const latest = checkpoints.at(-1);
        const verdict = verifyChain(entries, latest, key);
        // An older checkpoint that no longer matches locates a rewrite earlier than the latest can.
        const older = checkOlder(entries, checkpoints.slice(0, -1), key);
        const first =
          older !== undefined && !verdict.ok && verdict.seq <= older.seq ? verdict : (older ?? verdict);
        report(
          io,
          first,
          latest === undefined
            ? "; no checkpoint yet"
            : `; checkpoint of size ${latest.checkpoint.size} (${checkpoints.length} stored) verifies with key ${latest.keyId}`,
        );
      } finally {
        await store.close();
      }
    });
}

async function verifyExport(io: CliIo, opts: VerifyOptions): Promise<void> {
  const parsed = parseExport(readText(opts.file!, "the export"));
  if (!parsed.ok) throw new CliError(`${opts.file}:${parsed.line}: not an audit entry (${parsed.problem})`);
  if (opts.checkpoint === undefined) {
    if (opts.key !== undefined) throw new CliError("--key checks a checkpoint: pass --checkpoint too");
    report(io, verifyChain(parsed.entries), "; no checkpoint given: the chain is consistent, not proven");
    return;
  }
  if (opts.key === undefined)
    throw new CliError("--checkpoint needs --key (Ferry's public key) to check its signature");
  const key = readKey(opts.key);
  const body = readText(opts.checkpoint, "the checkpoint");
  const sigFile = opts.signature ?? `${opts.checkpoint}.sig`;
  if (!existsSync(sigFile)) throw new CliError(`no signature ${sigFile}: pass --signature`);
  const signature = readText(sigFile, "the signature");
  // An evidence export (`ferry evidence`) holds a segment a..N of the chain, not the chain from 1.
  if ((parsed.entries[0]?.seq ?? 1) > 1) {
    const segment = verifySegment(parsed.entries, { body, signature }, key);
    if (!segment.ok) report(io, segment, "");
    else
      io.out(
        `audit segment ok: entries ${segment.from}..${segment.size}, head ${segment.head}; checkpoint of size ${segment.size} verifies with ${opts.key} (entries before ${segment.from} are not in the file)\n`,
      );
    return;
  }
  const verdict = verifyChain(parsed.entries, { body, signature }, key);
  const size = verdict.ok ? JSON.parse(body).size : undefined;
  report(io, verdict, verdict.ok ? `; checkpoint of size ${size} verifies with ${opts.key}` : "");
}
