import { Command, CommanderError } from "commander";
import { ConfigError, loadConfigFile } from "../config/load.ts";
import { startFerry } from "../server.ts";
import { generateSigningKeyPem, KeyError, loadSigningKey, writeSigningKey } from "../signing/keys.ts";
import { checkReferencedFiles } from "./config-check.ts";
import { registerCopy } from "./copy.ts";
import { registerPolicy } from "./policy.ts";
import { Denied, registerVerify } from "./verify.ts";
import { registerVerifyBundle } from "./verify-bundle.ts";

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Called by `serve` once listening, with a function that stops the service. */
  onServing?: (stop: () => Promise<void>) => void;
}

/** Exit codes: 0 success, 1 a negative answer (e.g. verification denied), 2 usage or operational error. */
export const EXIT = { ok: 0, denied: 1, error: 2 } as const;

/** A failure the CLI reports in one line and exit code 2, with no stack trace. */
export class CliError extends Error {
  override name = "CliError";
}

const DEFAULT_CONFIG = "ferry.yaml";

function defaultConfigPath(env: CliIo["env"]): string {
  return env.FERRY_CONFIG ?? DEFAULT_CONFIG;
}

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
    .option("-c, --config <file>", "path of ferry.yaml (default: $FERRY_CONFIG or ./ferry.yaml)")
    .action(async (opts: { config?: string }) => {
      const file = opts.config ?? defaultConfigPath(io.env);
      const loaded = loadConfigFile(file, io.env);
      const ferry = await startFerry(loaded);
      if (loaded.config.dev) printDevBanner(io, ferry.url, loaded.file);
      io.onServing?.(() => ferry.close());
    });

  const config = program.command("config").description("work with ferry.yaml");
  config
    .command("check")
    .description(
      "validate a config file and the files it names (keys, trusted roots); prints every problem and exits 2 if there are any",
    )
    .argument("[file]", "path of ferry.yaml (default: $FERRY_CONFIG or ./ferry.yaml)")
    .action((file: string | undefined) => {
      const loaded = loadConfigFile(file ?? defaultConfigPath(io.env), io.env);
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
    .option("-c, --config <file>", "path of ferry.yaml (default: $FERRY_CONFIG or ./ferry.yaml)")
    .action((opts: { config?: string }) => {
      const loaded = loadConfigFile(opts.config ?? defaultConfigPath(io.env), io.env);
      // Never generates: exporting a key that does not exist yet is an error even in dev mode.
      io.out(loadSigningKey(loaded.config.keys.signing, false).key.publicKeyPem);
    });

  registerCopy(program, io);
  registerPolicy(program, io);
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
  if (err instanceof ConfigError) {
    io.err(`ferry: invalid config ${err.file}\n`);
    for (const p of err.problems) io.err(`  ${p.path || "(file)"}: ${p.message}\n`);
    return EXIT.error;
  }
  // A negative answer, already printed by its command.
  if (err instanceof Denied) return EXIT.denied;
  if (err instanceof KeyError || err instanceof CliError) {
    io.err(`ferry: ${err.message}\n`);
    return EXIT.error;
  }
  io.err(`ferry: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.error;
}
