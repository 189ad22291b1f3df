/** One problem that stops Ferry from starting: where in the config it is, and what to do about it. */
export interface StartupProblem {
  /** The config path, as `trust.authorities[1].key` (empty for the whole file or for no config). */
  path: string;
  message: string;
}

/**
 * The one shape of every start-up failure (a config that does not parse, an unusable signing key,
 * authority key or previous key, a policy that does not compile, an address that cannot be
 * listened on): the config file, when known, and every problem with its path. The CLI prints them
 * all the same way (`src/cli/program.ts`), with no stack trace, and exits 2.
 */
export class StartupError extends Error {
  /** The config file the problems are in; undefined when the thrower did not know it. */
  readonly file: string | undefined;
  readonly problems: readonly StartupProblem[];

  constructor(
    problems: readonly StartupProblem[],
    options: { file?: string | undefined; cause?: unknown } = {},
  ) {
    super(
      options.file === undefined
        ? problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join("\n")
        : `${options.file}: ${problems.length} problem(s)\n${problems.map((p) => `  ${p.path || "(file)"}: ${p.message}`).join("\n")}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "StartupError";
    this.file = options.file;
    this.problems = problems;
  }

  /** The same failure, placed in `file` (the config being started from) when it was not yet. */
  inFile(file: string): StartupError {
    return this.file === undefined ? new StartupError(this.problems, { file, cause: this }) : this;
  }
}

/** True when `value` is a start-up failure, whichever part of Ferry threw it. */
export function isStartupError(value: unknown): value is StartupError {
  return value instanceof StartupError;
}
