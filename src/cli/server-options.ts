import type { Command } from "commander";
import { ApiClient, checkServerUrl } from "./api-client.ts";
import type { CliIo } from "./io.ts";
import { findToken } from "./token-source.ts";

/** The options every command that talks to a Ferry server takes. */
export interface ServerOptions {
  server?: string;
  tokenFile?: string;
  audience?: string;
}

/** Adds `--server`, `--token-file` and `--audience` to a command. */
export function addServerOptions(command: Command): Command {
  return command
    .option("-s, --server <url>", "Ferry's URL (default: $FERRY_SERVER)")
    .option(
      "--token-file <file>",
      "read the bearer token from this file (else $FERRY_TOKEN, $FERRY_ID_TOKEN, or the GitHub Actions token endpoint)",
    )
    .option(
      "--audience <aud>",
      "audience of the token asked of GitHub Actions (default: $FERRY_AUDIENCE, else the server's origin)",
    );
}

/**
 * The API client a command uses: the server checked first (a bad URL needs no token), then the token
 * found once and kept only inside the client.
 */
export async function connect(options: ServerOptions, io: CliIo): Promise<ApiClient> {
  const server = checkServerUrl(options.server ?? io.env.FERRY_SERVER);
  const find = () =>
    findToken({
      server,
      env: io.env,
      ...(options.tokenFile === undefined ? {} : { tokenFile: options.tokenFile }),
      ...(options.audience === undefined ? {} : { audience: options.audience }),
    });
  const { token, source } = await find();
  // Only GitHub Actions can mint again; the other sources hold one token, used until it expires.
  const renew = source === "GitHub Actions" ? async () => (await find()).token : undefined;
  return new ApiClient({ server, token, ...(renew ? { renew } : {}) });
}
