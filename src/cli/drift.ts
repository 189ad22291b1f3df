import type { Command } from "commander";
import { z } from "zod";
import { CliError, type CliIo, Denied } from "./io.ts";
import { addServerOptions, connect, type ServerOptions } from "./server-options.ts";

interface DriftOpts extends ServerOptions {
  app?: string;
  env?: string;
  json?: boolean;
}

/** `GET /v1/apps/{app}/environments/{env}/drift`, as the CLI reads it. */
const DriftAnswer = z.looseObject({
  app: z.string(),
  environment: z.string(),
  recorded: z.looseObject({ digest: z.string(), promotion: z.string(), since: z.string() }).optional(),
  git: z.looseObject({
    repo: z.string(),
    branch: z.string(),
    path: z.string(),
    commit: z.string(),
    digest: z.string().optional(),
    repository: z.string().optional(),
    problem: z.string().optional(),
  }),
  registry: z.looseObject({
    repository: z.string(),
    digest: z.string().optional(),
    present: z.boolean(),
    verified: z.boolean(),
    reason: z.string().optional(),
  }),
  inSync: z.boolean(),
});
type DriftAnswer = z.infer<typeof DriftAnswer>;

/** The report as lines: verdict first, then each of the three sources. */
export function formatDrift(d: DriftAnswer): string {
  const short = (sha: string) => sha.slice(0, 12);
  const lines = [
    `${d.app} in ${d.environment}: ${d.inSync ? "in sync" : "DRIFT"}`,
    `  ferry:    ${d.recorded ? `${d.recorded.digest} (promotion ${d.recorded.promotion}, since ${d.recorded.since})` : "nothing promoted yet"}`,
    `  git:      ${d.git.digest ?? `no digest (${d.git.problem ?? "unreadable"})`} at ${d.git.branch}@${short(d.git.commit)} ${d.git.path}${d.git.repository ? ` (${d.git.repository})` : ""}`,
    `  registry: ${d.registry.repository}${d.registry.digest ? `@${d.registry.digest}` : ""}: ${
      !d.registry.digest
        ? "nothing to look up"
        : !d.registry.present
          ? "missing"
          : d.registry.verified
            ? "present, verified"
            : `present, NOT verified (${d.registry.reason ?? "unknown"})`
    }`,
  ];
  return `${lines.join("\n")}\n`;
}

/** Registers `ferry drift --app --env`: exit 0 in sync, 1 drift, 2 errors. */
export function registerDrift(program: Command, io: CliIo): void {
  addServerOptions(
    program
      .command("drift")
      .description(
        "compare what Ferry promoted, what Git pins and what the registry holds for one app and environment",
      )
      .option("--app <name>", "the app")
      .option("--env <name>", "the environment")
      .option("--json", "print the answer as JSON"),
  ).action(async (opts: DriftOpts) => {
    if (!opts.app || !opts.env) throw new CliError("drift needs --app and --env");
    const client = await connect(opts, io);
    const route = `/v1/apps/${encodeURIComponent(opts.app)}/environments/${encodeURIComponent(opts.env)}/drift`;
    const { data } = await client.get(route, DriftAnswer);
    io.out(opts.json ? `${JSON.stringify(data, null, 2)}\n` : formatDrift(data));
    if (!data.inSync) throw new Denied(`${opts.app} in ${opts.env} has drifted`);
  });
}
