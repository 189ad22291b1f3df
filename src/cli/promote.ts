import type { Command } from "commander";
import { systemClock } from "../common/clock.ts";
import { ERROR_CODES, type ErrorCode } from "../common/errors.ts";
import { parseDuration } from "../config/duration.ts";
import { isDigest } from "../registry/digest.ts";
import { type ApiClient, ApiProblem, Unreachable } from "./api-client.ts";
import { CliError, type CliIo, Denied, EXIT, StillWaiting } from "./io.ts";
import {
  describeChanges,
  exitCodeFor,
  isFinished,
  type Promotion,
  PromotionResource,
  resultLine,
} from "./promotion-format.ts";
import { addServerOptions, connect, type ServerOptions } from "./server-options.ts";

interface PromoteOpts extends ServerOptions {
  app: string;
  digest: string;
  to: string;
  rollback?: boolean;
  reason?: string;
  breakGlass?: string;
  idempotencyKey?: string;
  wait?: string | true;
  json?: boolean;
}

/** How long `--wait` alone waits. */
export const DEFAULT_WAIT = "30m";
/** The longest single long-poll asked of the server (it caps the wait on its side as well). */
const POLL_SECONDS = 30;
/** Consecutive transient failures (unreachable, 502/503/504) tolerated while waiting. */
const POLL_RETRIES = 5;

/** Registers `ferry promote --app A --digest sha256:… --to ENV [--wait[=30m]] [--json]`. */
export function registerPromote(program: Command, io: CliIo): void {
  addServerOptions(
    program
      .command("promote")
      .description(
        "ask Ferry to promote a digest of an app into an environment; exit 0 promoted, 1 failed/rejected/cancelled/superseded/expired, 2 error, 3 still waiting",
      )
      .requiredOption("--app <name>", "the app, as named in ferry.yaml")
      .requiredOption("--digest <sha256:hex>", "the digest to promote (a tag is refused)")
      .requiredOption("--to <environment>", "the target environment")
      .option("--rollback", "promote a digest that was current in the target before (needs --reason)")
      .option("--reason <text>", "why (required with --rollback; recorded in the history)")
      .option(
        "--break-glass <justification>",
        "skip order, soak, freeze and approvals (never verification), saying why; logged, and reviewed afterwards",
      )
      .option(
        "--idempotency-key <key>",
        "the same key and request give the same promotion, even when retried",
      )
      .option(
        "--wait [duration]",
        `wait until the promotion ends, at most this long (default ${DEFAULT_WAIT})`,
      )
      .option("--json", "print the final promotion resource as JSON on stdout (progress goes to stderr)"),
  ).action((opts: PromoteOpts) => promote(opts, io));
}

async function promote(opts: PromoteOpts, io: CliIo): Promise<void> {
  if (!isDigest(opts.digest)) {
    throw new CliError(
      `--digest ${JSON.stringify(opts.digest)} is not a digest (expected sha256:<64 hex>); tags are refused`,
    );
  }
  if (opts.rollback && (opts.reason === undefined || opts.reason.trim() === "")) {
    throw new CliError("--rollback needs --reason TEXT");
  }
  if (opts.breakGlass !== undefined && opts.breakGlass.trim() === "") {
    throw new CliError('--break-glass needs a justification: --break-glass "why"');
  }
  // Checked here: a header value fetch refuses would otherwise surface as "cannot reach".
  if (opts.idempotencyKey !== undefined && !/^[\x20-\x7e]{1,200}$/.test(opts.idempotencyKey)) {
    throw new CliError("--idempotency-key must be 1-200 printable ASCII characters");
  }
  const waitMs =
    opts.wait === undefined ? undefined : parseWait(opts.wait === true ? DEFAULT_WAIT : opts.wait);
  const client = await connect(opts, io);
  // With --json, stdout carries the resource alone, so a pipeline can parse it.
  const progress = opts.json ? io.err : io.out;
  const print = (lines: string[]) => {
    if (lines.length > 0) progress(`${lines.join("\n")}\n`);
  };

  const created = await client.post("/v1/promotions", PromotionResource, {
    body: {
      app: opts.app,
      digest: opts.digest,
      to: opts.to,
      ...(opts.rollback ? { rollback: true } : {}),
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
      ...(opts.breakGlass === undefined ? {} : { breakGlass: { justification: opts.breakGlass } }),
    },
    ...(opts.idempotencyKey === undefined ? {} : { headers: { "idempotency-key": opts.idempotencyKey } }),
  });
  let current = created.data;
  print(describeChanges(undefined, current));
  if (waitMs !== undefined) {
    current = await follow(
      client,
      current,
      created.headers.get("etag"),
      systemClock.now() + waitMs,
      print,
      io,
    );
  }

  progress(`${resultLine(current)}\n`);
  if (opts.json) io.out(`${JSON.stringify(current, null, 2)}\n`);
  const code = exitCodeFor(current.state);
  if (code === EXIT.denied) throw new Denied(`promotion ${current.id} ${current.state}`);
  if (code === EXIT.waiting) throw new StillWaiting(`promotion ${current.id} still ${current.state}`);
}

function parseWait(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw new CliError(`--wait ${JSON.stringify(text)} is not a duration such as 30s, 10m or 1h`);
  return ms;
}

/**
 * Long-polls the promotion until it ends or `deadline` passes, printing each change. A transient
 * failure (Ferry restarting, a proxy's 502) is retried a few times: a pipeline waiting half an hour
 * should not fail on a blip, nor wait forever on a server that is gone.
 */
async function follow(
  client: ApiClient,
  start: Promotion,
  startTag: string | null,
  deadline: number,
  print: (lines: string[]) => void,
  io: CliIo,
): Promise<Promotion> {
  let current = start;
  // The version last seen (the resource's ETag): the server answers as soon as it differs, so a
  // change between two polls is never missed.
  let etag = startTag;
  let failures = 0;
  while (!isFinished(current.state)) {
    const left = deadline - systemClock.now();
    if (left <= 0) break;
    const waitSeconds = Math.max(1, Math.min(POLL_SECONDS, Math.ceil(left / 1000)));
    const asked = systemClock.now();
    let next: Promotion;
    try {
      const res = await client.get(`/v1/promotions/${encodeURIComponent(current.id)}`, PromotionResource, {
        query: { wait: `${waitSeconds}s` },
        ...(etag ? { headers: { "if-none-match": etag } } : {}),
        timeoutMs: (waitSeconds + 15) * 1000,
      });
      next = res.data;
      etag = res.headers.get("etag") ?? etag;
      failures = 0;
    } catch (err) {
      if (!isTransient(err) || ++failures > POLL_RETRIES) throw err;
      io.err(`ferry: ${(err as Error).message}; retrying (${failures}/${POLL_RETRIES})\n`);
      await sleep(Math.min(1000 * 2 ** (failures - 1), Math.max(0, deadline - systemClock.now())));
      continue;
    }
    const lines = describeChanges(current, next);
    print(lines);
    current = next;
    // A server that answers at once without a change (no long-poll support) must not be hammered.
    if (lines.length === 0 && systemClock.now() - asked < 1000)
      await sleep(Math.min(1000, Math.max(0, deadline - systemClock.now())));
  }
  return current;
}

/**
 * Whether a failed poll is worth repeating: a problem whose code the error table marks retryable
 * (an upstream_denied 502 is final), else, for an answer without a known code (a proxy's 502/503/504
 * page), by its status; and a server that could not be reached at all.
 */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiProblem) {
    if (err.code !== undefined && err.code in ERROR_CODES)
      return ERROR_CODES[err.code as ErrorCode].retryable;
    return err.status === 502 || err.status === 503 || err.status === 504;
  }
  return err instanceof Unreachable;
}

const sleep = (ms: number) => systemClock.sleep(ms);
