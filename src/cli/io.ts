/**
 * What every `ferry` subcommand shares: where it writes, its exit codes, and the two ways a command
 * ends short of success. Subcommands import this, never `program.ts`, so the command tree has no
 * import cycle (program.ts registers the subcommands; they know nothing of it).
 */

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Called by `serve` once listening, with a function that stops the service. */
  onServing?: (stop: () => Promise<void>) => void;
}

/**
 * Exit codes: 0 success, 1 a negative answer (verification denied, promotion failed), 2 usage or
 * operational error, 3 still waiting when `--wait` ran out.
 */
export const EXIT = { ok: 0, denied: 1, error: 2, waiting: 3 } as const;

/** A failure the CLI reports in one line and exit code 2, with no stack trace. */
export class CliError extends Error {
  override name = "CliError";
}

/** Ends a command with exit code 1 (a negative answer) after it has printed its answer. */
export class Denied extends Error {
  override name = "Denied";
  readonly exitCode = 1;
}

/** Ends a command with exit code 3 (still waiting when `--wait` ran out) after it has printed its state. */
export class StillWaiting extends Error {
  override name = "StillWaiting";
  readonly exitCode = 3;
}

/** The config file a command reads: `--config`, else `$FERRY_CONFIG`, else `./ferry.yaml`. */
export function configPath(option: string | undefined, env: CliIo["env"]): string {
  return option ?? env.FERRY_CONFIG ?? "ferry.yaml";
}

/** The `--config` option's help text, the same on every command. */
export const CONFIG_OPTION_HELP = "path of ferry.yaml (default: $FERRY_CONFIG or ./ferry.yaml)";
