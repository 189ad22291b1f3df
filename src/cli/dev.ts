import type { Command } from "commander";
import { z } from "zod";
import { type LoadedConfig, loadConfigFile } from "../config/load.ts";
import type { FerryConfig } from "../config/schema.ts";
import { ensureDevGitopsRepos } from "../dev/gitops-repo.ts";
import { loadDevIssuerKey } from "../dev/issuer-key.ts";
import { seedDemo } from "../dev/seed.ts";
import { devIssuers, mintDevToken, personClaims, pipelineClaims } from "../dev/token.ts";
import { ApiClient, checkServerUrl } from "./api-client.ts";
import { CliError, type CliIo, CONFIG_OPTION_HELP, configPath } from "./io.ts";

interface TokenOpts {
  config?: string;
  pipeline?: boolean;
  app?: string;
  person?: string;
  groups?: string;
  issuer?: string;
}

interface SeedOpts {
  config?: string;
  app: string;
  env?: string;
  server?: string;
  export?: boolean;
}

type Issuer = FerryConfig["issuers"][number];

/** Loads the config and refuses anything but a dev config: these commands mint what it trusts. */
function devConfig(option: string | undefined, io: CliIo): LoadedConfig {
  const loaded = loadConfigFile(configPath(option, io.env), io.env);
  if (!loaded.config.dev) {
    throw new CliError(`${loaded.file} is not a dev config (dev: true): ferry dev works only with one`);
  }
  return loaded;
}

/** The dev issuer of `kind` to mint with: `--issuer`, else the only (or first) one of that kind. */
function pickIssuer(
  config: FerryConfig,
  kind: Issuer["kind"],
  name: string | undefined,
): { issuer: Issuer; index: number } {
  const candidates = devIssuers(config).filter(
    (c) => c.issuer.kind === kind && (name === undefined || c.issuer.name === name),
  );
  const found = candidates[0];
  if (found === undefined) {
    throw new CliError(
      `no dev issuer${name === undefined ? "" : ` named ${name}`} of kind ${kind} in the config (issuers[] with devKey)`,
    );
  }
  return found;
}

async function devToken(opts: TokenOpts, io: CliIo): Promise<string> {
  if (Boolean(opts.pipeline) === (opts.person !== undefined)) {
    throw new CliError("pass either --pipeline --app NAME or --person NAME [--groups a,b]");
  }
  const { config } = devConfig(opts.config, io);
  if (opts.pipeline) {
    if (opts.app === undefined)
      throw new CliError("--pipeline needs --app NAME (the app whose pipelines rule to satisfy)");
    // By default the dev issuer the app's pipelines rules name (the first of them).
    const named = config.apps
      .find((a) => a.name === opts.app)
      ?.pipelines.map((p) => p.issuer)
      .find((n) => devIssuers(config).some((d) => d.issuer.name === n && d.issuer.kind === "pipeline"));
    const { issuer, index } = pickIssuer(config, "pipeline", opts.issuer ?? named);
    const claims = pipelineClaims(config, opts.app, issuer);
    const { key } = loadDevIssuerKey(issuer.devKey!, `issuers[${index}].devKey`);
    const subject = `repo:${String(claims.repository ?? opts.app)}:ref:${String(claims.ref ?? "refs/heads/main")}`;
    return mintDevToken(key, issuer, subject, claims);
  }
  const person = opts.person!.trim();
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(person)) {
    throw new CliError("--person must be a login: letters, digits, '.', '_' or '-'");
  }
  const groups = (opts.groups ?? "")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
  const { issuer, index } = pickIssuer(config, "human", opts.issuer);
  const { key } = loadDevIssuerKey(issuer.devKey!, `issuers[${index}].devKey`);
  return mintDevToken(key, issuer, person, personClaims(issuer, person, groups));
}

/**
 * Registers `ferry dev token` and `ferry dev seed`: what the embedded default (`npm start`) needs to
 * show the whole flow with no external service. Both refuse a config without `dev: true`.
 */
export function registerDev(program: Command, io: CliIo): void {
  const dev = program.command("dev").description("dev mode only: mint dev tokens, seed a demo image");
  dev
    .command("token")
    .description(
      "print a 5-minute, single-use token of a dev issuer (issuers[].devKey) that the dev config trusts",
    )
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .option("--pipeline", "a pipeline's token, with the claims the app's pipelines rule pins")
    .option("--app <name>", "with --pipeline: the app")
    .option("--person <login>", "a person's token (a human dev issuer), e.g. alice")
    .option("--groups <list>", "with --person: comma-separated groups, e.g. release-managers")
    .option("--issuer <name>", "the dev issuer to mint for (default: the first of the right kind)")
    .action(async (opts: TokenOpts) => {
      io.out(`${await devToken(opts, io)}\n`);
    });
  dev
    .command("seed")
    .description(
      "build a demo image into the app's first layout, have Ferry sign it and attest its provenance; prints its digest",
    )
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .option("--app <name>", "the app", "demo")
    .option("--env <name>", "the environment whose layout receives it (default: the first one)")
    .option("-s, --server <url>", "Ferry's URL (default: $FERRY_SERVER, else the config's server.publicUrl)")
    .option("--export", "print `export DIGEST=sha256:…` (for eval) instead of the bare digest")
    .action(async (opts: SeedOpts) => {
      const loaded = devConfig(opts.config, io);
      const server = checkServerUrl(opts.server ?? io.env.FERRY_SERVER ?? loaded.config.server.publicUrl);
      for (const repo of await ensureDevGitopsRepos(loaded.config))
        io.err(`created the GitOps repository ${repo}\n`);
      const seeded = await seedDemo({
        config: loaded.config,
        app: opts.app,
        ...(opts.env === undefined ? {} : { environment: opts.env }),
        sign: async (image, attestations) => {
          // A fresh single-use token: the pipeline asks Ferry to sign, as a real one would.
          const token = await devToken({ config: loaded.file, pipeline: true, app: opts.app }, io);
          await new ApiClient({ server, token }).post("/v1/signatures", z.looseObject({}), {
            body: { image, attestations },
          });
        },
      });
      io.err(`seeded ${seeded.image}\n  signed and attested (SLSA provenance) by Ferry at ${server}\n`);
      io.out(opts.export ? `export DIGEST=${seeded.digest}\n` : `${seeded.digest}\n`);
    });
}
