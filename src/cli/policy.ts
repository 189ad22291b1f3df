import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadConfigFile } from "../config/load.ts";
import { describeClaimIssues, PLATFORM_CLAIMS } from "../identity/claims.ts";
import { formatDecision } from "../identity/policy.ts";
import { compileTrustPolicies, issuerPlatforms } from "../identity/trust-policies.ts";
import { CliError, type CliIo } from "./program.ts";
import { Denied } from "./verify.ts";

interface ExplainOpts {
  config?: string;
  credential: string;
  claims: string;
  issuer?: string;
}

function readClaims(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(
      `--claims ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`--claims ${file}: not JSON (expected the token's payload, a JSON object)`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError(`--claims ${file}: expected a JSON object of claims`);
  }
  return value as Record<string, unknown>;
}

/**
 * Registers `ferry policy explain` (a dry run of a credential's trust policy against a claim set:
 * which rule matched, or per rule which claim failed; exit 0 allowed, 1 denied, 2 error) and
 * `ferry policy lint` (the risky-policy warnings Ferry logs at start-up).
 */
export function registerPolicy(program: Command, io: CliIo): void {
  const policy = program.command("policy").description("dry-run and lint trust policies");
  const configPath = (opts: { config?: string }) => opts.config ?? io.env.FERRY_CONFIG ?? "ferry.yaml";

  policy
    .command("explain")
    .description(
      "explain whether a claim set may obtain a credential: the matching rule, or each failed claim",
    )
    .option("-c, --config <file>", "path of ferry.yaml (default: $FERRY_CONFIG or ./ferry.yaml)")
    .requiredOption("--credential <name>", "the credential's name (the exchange's audience)")
    .requiredOption("--claims <file>", "a JSON file with the token's claims (its decoded payload)")
    .option("--issuer <name>", "the issuer's config name (default: the one whose url equals the claims' iss)")
    .action((opts: ExplainOpts) => {
      const { config } = loadConfigFile(configPath(opts), io.env);
      const policies = compileTrustPolicies(config);
      const compiled = policies.credentials.get(opts.credential);
      if (compiled === undefined) {
        const known = [...policies.credentials.keys()].join(", ") || "none are defined";
        throw new CliError(`--credential ${opts.credential}: no such credential (known: ${known})`);
      }
      const claims = readClaims(opts.claims);
      for (const w of policies.warnings.filter((w) =>
        w.path.startsWith(`credentials[${config.credentials.findIndex((c) => c.name === opts.credential)}]`),
      )) {
        io.err(`warning: ${w.path}: ${w.message}\n`);
      }
      let issuer = opts.issuer === undefined ? undefined : config.issuers.find((i) => i.name === opts.issuer);
      if (opts.issuer !== undefined && issuer === undefined) {
        throw new CliError(`--issuer ${opts.issuer}: no such issuer`);
      }
      if (issuer === undefined) {
        if (typeof claims.iss !== "string") throw new CliError("the claims have no iss; pass --issuer NAME");
        issuer = config.issuers.find((i) => i.url === claims.iss);
        if (issuer === undefined) {
          io.out(
            `denied: iss ${JSON.stringify(claims.iss)} is not a registered issuer (iss is matched exactly)\n`,
          );
          throw new Denied("unregistered issuer");
        }
      }
      const platform = issuerPlatforms(config).get(issuer.name) ?? "generic";
      const cred = config.credentials.find((c) => c.name === opts.credential)!;
      io.out(
        `credential ${cred.name} (${cred.type}, environment ${cred.environment}); claims from issuer ${issuer.name} (${platform})\n`,
      );
      const schema = PLATFORM_CLAIMS[platform];
      const checked = schema?.safeParse(claims);
      if (checked !== undefined && !checked.success) {
        io.out(`denied: these are not valid ${platform} claims: ${describeClaimIssues(checked.error)}\n`);
        throw new Denied("invalid claims");
      }
      const decision = compiled.evaluate({ issuer: issuer.name, claims });
      io.out(`${formatDecision(decision).join("\n")}\n`);
      if (!decision.allowed) throw new Denied(`credential ${cred.name} denied`);
    });

  policy
    .command("lint")
    .description("list risky trust policies (exit 0 even when there are warnings)")
    .option("-c, --config <file>", "path of ferry.yaml (default: $FERRY_CONFIG or ./ferry.yaml)")
    .action((opts: { config?: string }) => {
      const loaded = loadConfigFile(configPath(opts), io.env);
      const { warnings } = compileTrustPolicies(loaded.config);
      for (const w of warnings) io.out(`${w.path}: ${w.message}\n`);
      io.out(`${loaded.file}: ${warnings.length} warning(s)\n`);
    });
}
