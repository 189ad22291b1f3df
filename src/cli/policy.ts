import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadConfigFile } from "../config/load.ts";
import { describeClaimIssues, PLATFORM_CLAIMS } from "../identity/claims.ts";
import { formatDecision } from "../identity/policy.ts";
import { compileTrustPolicies, issuerPlatforms } from "../identity/trust-policies.ts";
import { CliError, type CliIo, CONFIG_OPTION_HELP, configPath, Denied } from "./io.ts";

interface ExplainOpts {
  config?: string;
  credential: string;
  claims: string;
  issuer?: string;
}

/** Three base64url segments: a compact JWS, whose middle segment is the claims. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/;

/**
 * The claims in `file`: a JSON object (a token's decoded payload), or a whole JWT, whose payload is
 * decoded without checking its signature (`fromJwt` then says so). This is a dry run of a policy,
 * never an authentication: nothing here trusts the token.
 */
function readClaims(file: string): { claims: Record<string, unknown>; fromJwt: boolean } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(
      `--claims ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const jws = COMPACT_JWS.exec(text.trim());
  let value: unknown;
  try {
    value = JSON.parse(jws ? Buffer.from(jws[1]!, "base64url").toString("utf8") : text);
  } catch {
    throw new CliError(
      jws
        ? `--claims ${file}: a JWT whose payload is not JSON`
        : `--claims ${file}: neither JSON nor a JWT (expected the token's payload as a JSON object, or the token itself)`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError(`--claims ${file}: expected a JSON object of claims`);
  }
  return { claims: value as Record<string, unknown>, fromJwt: jws !== null };
}

/**
 * Registers `ferry policy explain` (a dry run of a credential's trust policy against a claim set:
 * which rule matched, or per rule which claim failed; exit 0 allowed, 1 denied, 2 error) and
 * `ferry policy lint` (the risky-policy warnings Ferry logs at start-up).
 */
export function registerPolicy(program: Command, io: CliIo): void {
  const policy = program.command("policy").description("dry-run and lint trust policies");

  policy
    .command("explain")
    .description(
      "explain whether a claim set may obtain a credential: the matching rule, or each failed claim",
    )
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .requiredOption("--credential <name>", "the credential's name (the exchange's audience)")
    .requiredOption(
      "--claims <file>",
      "a file with the token's claims: its decoded payload (JSON) or the JWT itself (signature not checked)",
    )
    .option("--issuer <name>", "the issuer's config name (default: the one whose url equals the claims' iss)")
    .action((opts: ExplainOpts) => {
      const { config } = loadConfigFile(configPath(opts.config, io.env), io.env);
      const policies = compileTrustPolicies(config);
      const compiled = policies.credentials.get(opts.credential);
      if (compiled === undefined) {
        const known = [...policies.credentials.keys()].join(", ") || "none are defined";
        throw new CliError(`--credential ${opts.credential}: no such credential (known: ${known})`);
      }
      const { claims, fromJwt } = readClaims(opts.claims);
      if (fromJwt) io.err("note: read the claims from the JWT's payload; its signature was not checked\n");
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
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .action((opts: { config?: string }) => {
      const loaded = loadConfigFile(configPath(opts.config, io.env), io.env);
      const { warnings } = compileTrustPolicies(loaded.config);
      for (const w of warnings) io.out(`${w.path}: ${w.message}\n`);
      io.out(`${loaded.file}: ${warnings.length} warning(s)\n`);
    });
}
