import type { Command } from "commander";
import { loadConfigFile } from "../config/load.ts";
import { createRegistryClient } from "../registry/client.ts";
import { absoluteLayoutReference } from "../registry/reference.ts";
import { loadSigningKey } from "../signing/keys.ts";
import { createVerificationService } from "../verify/create.ts";
import type { VerificationReport } from "../verify/report.ts";
import { type CliIo, CONFIG_OPTION_HELP, configPath, Denied } from "./io.ts";

/** The report as lines a person reads: one per check, one per candidate under a failed check. */
export function formatReport(report: VerificationReport): string {
  const lines = [
    `${report.allowed ? "ALLOWED" : "DENIED"} ${report.digest} for ${report.environment}${report.cached ? " (cached)" : ""}`,
  ];
  for (const check of report.checks) {
    lines.push(`  ${check.passed ? "✓" : "✗"} ${check.name}: ${check.reason} — ${check.message}`);
    if (check.passed) continue;
    for (const c of check.details?.candidates ?? []) {
      lines.push(`      ${c.reason}: ${c.source} (${c.digest}) — ${c.message}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Registers `ferry verify IMAGE@sha256:HEX --env NAME [--config FILE] [--json]`. */
export function registerVerify(program: Command, io: CliIo): void {
  program
    .command("verify")
    .description("decide whether a digest may enter an environment; exit 0 allowed, 1 denied, 2 error")
    .argument("<image>", "HOST[:PORT]/REPO@sha256:HEX or oci-layout:PATH@sha256:HEX (a tag is refused)")
    .requiredOption("-e, --env <name>", "the environment whose policy applies")
    .option("-c, --config <file>", CONFIG_OPTION_HELP)
    .option("--json", "print the report as JSON")
    .action(async (image: string, opts: { env: string; config?: string; json?: boolean }) => {
      const { config } = loadConfigFile(configPath(opts.config, io.env), io.env);
      const needsFerryKey = config.trust.authorities.some((a) => a.key === "ferry");
      const ferryKey = needsFerryKey ? loadSigningKey(config.keys.signing, false).key.publicKey : undefined;
      const client = createRegistryClient(config);
      const service = createVerificationService(config, {
        ...(ferryKey ? { ferryKey } : {}),
        readerFor: (ref) => client.repositoryOf(ref),
      });
      // A layout named relative to where the command runs, as `ferry copy` takes it.
      const report = await service.verify(absoluteLayoutReference(image, process.cwd()), opts.env);
      io.out(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      if (!report.allowed) throw new Denied(`${report.digest} denied for ${report.environment}`);
    });
}
