import { Command, CommanderError } from "commander";
import { isStartupError, type StartupError, type StartupProblem } from "../common/startup-error.ts";
import { ConfigError, type LoadedConfig, loadConfigFile } from "../config/load.ts";
import { startFerry } from "../server.ts";
import { generateSigningKeyPem, loadSigningKey, writeSigningKey } from "../signing/keys.ts";
import { registerApprovals } from "./approve.ts";
import { registerAudit } from "./audit.ts";
import { checkReferencedFiles } from "./config-check.ts";
import { registerCopy } from "./copy.ts";
import { registerDev } from "./dev.ts";
import { registerDrift } from "./drift.ts";
import { registerEvidence } from "./evidence.ts";
import { CliError, type CliIo, CONFIG_OPTION_HELP, configPath, Denied, EXIT, StillWaiting } from "./io.ts";
import { registerPolicy } from "./policy.ts";
import { registerPromote } from "./promote.ts";
import { registerApps, registerPromotions } from "./promotions.ts";
import { registerVerify } from "./verify.ts";
import { registerVerifyBundle } from "./verify-bundle.ts";

function printDevBanner(io: CliIo, url: string, configFile: string): void {
  io.err(
    [
      "",
      `Ferry is listening on ${url} (config: ${configFile})`,
      "Try:",
      `  curl ${url}/healthz`,
      `  curl ${url}/readyz`,
      `  curl ${url}/metrics`,
      `  curl ${url}/openapi.yaml`,
      "Stop it with Ctrl-C.",
      "",
    ].join("\n"),
  );
}

/** Builds the `ferry` command line. */
export function buildProgram(io: CliIo): Command {
  const program = new Command("ferry")
    .description("Ferry: artifact signing and promotion broker")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError("(run with --help for usage)");

  program
    .command("serve")
    .description("run the Ferry service")
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .action(async (opts: { config?: string }) => {
      const file = configPath(opts.config, io.env);
      const loaded = loadConfigFile(file, io.env);
      const ferry = await startFerry(loaded).catch((err: unknown) => {
        throw isStartupError(err) ? err.inFile(loaded.file) : err;
      });
      if (loaded.config.dev) printDevBanner(io, ferry.url, loaded.file);
      io.onServing?.(() => ferry.close());
    });

  const config = program.command("config").description("work with ferry.yaml");
  config
    .command("check")
    .description(
      "validate a config file and the files it names (keys, trusted roots); prints every problem and exits 2 if there are any",
    )
    .argument("[file]", CONFIG_OPTION_HELP)
    .action((file: string | undefined) => {
      const path = configPath(file, io.env);
      let loaded: LoadedConfig;
      try {
        loaded = loadConfigFile(path, io.env);
      } catch (err) {
        if (!(err instanceof ConfigError) || err.unset.variables.length === 0) throw err;
        throw new ConfigError(err.file, [...err.problems, ...filesBesideUnsetVariables(path, io.env, err)]);
      }
      const problems = checkReferencedFiles(loaded);
      if (problems.length > 0) throw new ConfigError(loaded.file, problems);
      io.out(`${loaded.file}: ok\n`);
    });

  const keys = program.command("keys").description("manage Ferry's signing key");
  keys
    .command("generate")
    .description("generate an ECDSA P-256 signing key (PKCS#8 PEM)")
    .option("-o, --out <file>", "write the key to this file (mode 0600) instead of stdout")
    .option("--force", "replace an existing file")
    .action((opts: { out?: string; force?: boolean }) => {
      if (opts.out === undefined) {
        io.out(generateSigningKeyPem());
        return;
      }
      const key = writeSigningKey(opts.out, { force: opts.force ?? false });
      io.out(`wrote ${opts.out} (key id sha256:${key.id})\n${key.publicKeyPem}`);
    });
  keys
    .command("export")
    .description("print Ferry's public signing key as PEM (for `cosign verify --key`)")
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .action((opts: { config?: string }) => {
      const loaded = loadConfigFile(configPath(opts.config, io.env), io.env);
      // Never generates: exporting a key that does not exist yet is an error even in dev mode.
      io.out(loadSigningKey(loaded.config.keys.signing, false).key.publicKeyPem);
    });

  registerApprovals(program, io);
  registerAudit(program, io);
  registerCopy(program, io);
  registerDev(program, io);
  registerPolicy(program, io);
  registerPromote(program, io);
  registerPromotions(program, io);
  registerApps(program, io);
  registerDrift(program, io);
  registerEvidence(program, io);
  registerVerify(program, io);
  registerVerifyBundle(program, io);
  return program;
}

/** Runs the CLI and returns the exit code; never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.ok;
  } catch (err) {
    return reportError(err, io);
  }
}

/**
 * Prints a start-up failure, whichever part of Ferry threw it: under the config file when it is
 * known, one problem a line with its config path; else each problem on its own `ferry:` line.
 */
function printStartupError(err: StartupError, io: CliIo): void {
  if (err.file !== undefined) {
    io.err(`ferry: invalid config ${err.file}\n`);
    for (const p of err.problems) io.err(`  ${p.path || "(file)"}: ${p.message}\n`);
    return;
  }
  for (const p of err.problems) io.err(`ferry: ${p.path ? `${p.path}: ` : ""}${p.message}\n`);
}

function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    // Help and version requests end in a CommanderError too; they are not failures.
    if (
      err.code === "commander.helpDisplayed" ||
      err.code === "commander.version" ||
      err.code === "commander.help"
    ) {
      return EXIT.ok;
    }
    return EXIT.error;
  }
  if (isStartupError(err)) {
    printStartupError(err, io);
    return EXIT.error;
  }
  // A negative answer, already printed by its command.
  if (err instanceof Denied) return EXIT.denied;
  if (err instanceof StillWaiting) return EXIT.waiting;
  if (err instanceof CliError) {
    io.err(`ferry: ${err.message}\n`);
    return EXIT.error;
  }
  io.err(`ferry: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.error;
}

/** Stands in for an unset `${VAR}` so the rest of a config can still be checked: a valid URL and path. */
const UNSET_PLACEHOLDER = "http://unset.invalid";

/**
 * The file problems `config check` can still report when some `${VAR}`s are unset: the config is
 * loaded again with each unset variable standing in as a placeholder, and the files it names are
 * checked, except those whose value comes from an unset variable (their problem is already listed).
 * Nothing when the config does not load even so (its schema problems are already listed).
 */
function filesBesideUnsetVariables(file: string, env: CliIo["env"], first: ConfigError): StartupProblem[] {
  const filled = { ...env, ...Object.fromEntries(first.unset.variables.map((v) => [v, UNSET_PLACEHOLDER])) };
  let loaded: LoadedConfig;
  try {
    loaded = loadConfigFile(file, filled);
  } catch {
    return [];
  }
  const unsetPaths = new Set(first.unset.paths);
  const already = new Set(first.problems.map((p) => p.path));
  return checkReferencedFiles(loaded).filter((p) => !unsetPaths.has(p.path) && !already.has(p.path));
}
