import { readFile } from "node:fs/promises";
import { z } from "zod";
import { CliError, type CliIo } from "./io.ts";

/** Where a CLI token came from; printed in errors, never the token itself. */
export type TokenSourceName = "--token-file" | "FERRY_TOKEN" | "FERRY_ID_TOKEN" | "GitHub Actions";

/** A bearer token for Ferry's API and where it was found. */
export interface FoundToken {
  token: string;
  source: TokenSourceName;
}

/** Options of {@link findToken}: the command's flags and what it may read. */
export interface TokenSourceOptions {
  /** `--token-file`: the token is this file's content (trimmed). */
  tokenFile?: string;
  /** `--audience`: the `aud` asked of GitHub Actions (default: `$FERRY_AUDIENCE`, else the server's origin). */
  audience?: string;
  /** The Ferry server, for the default audience. */
  server: string;
  env: CliIo["env"];
  /** How the GitHub Actions token endpoint is reached (tests pass their own; default global fetch). */
  fetch?: typeof fetch;
  /** Timeout of the GitHub Actions token request in ms (default 15 s). */
  timeoutMs?: number;
}

/** The ways the CLI finds a token, in the words of the error that lists them. */
export const TOKEN_SOURCES_HELP =
  "pass --token-file FILE or set FERRY_TOKEN; in GitLab CI declare `id_tokens: FERRY_ID_TOKEN: { aud: <audience> }`; " +
  "in GitHub Actions grant the job `permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN)";

// RFC 6750 b64token: what may follow "Bearer ". Anything else (a newline above all) would let a file's
// content inject headers, so it is refused before any request.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX_TOKEN_BYTES = 64 * 1024;

const GitHubTokenAnswer = z.object({ value: z.string().min(1) });

/**
 * Finds the bearer token the way a pipeline holds one, first match wins: `--token-file`, then
 * `FERRY_TOKEN`, then `FERRY_ID_TOKEN` (GitLab's `id_tokens:`), then GitHub Actions' token endpoint
 * with the audience. An explicit choice beats an ambient one: a GitHub runner always offers its
 * endpoint, so a token given on purpose must win over it. Throws a {@link CliError} naming every way
 * when none is found; no error ever contains a token.
 */
export async function findToken(options: TokenSourceOptions): Promise<FoundToken> {
  const { env } = options;
  if (options.tokenFile !== undefined) {
    let text: string;
    try {
      text = await readFile(options.tokenFile, "utf8");
    } catch (err) {
      throw new CliError(
        `cannot read --token-file ${options.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    return { token: checked(text, `--token-file ${options.tokenFile}`), source: "--token-file" };
  }
  for (const name of ["FERRY_TOKEN", "FERRY_ID_TOKEN"] as const) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return { token: checked(value, name), source: name };
  }
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (requestUrl && requestToken) {
    const audience = options.audience ?? env.FERRY_AUDIENCE ?? new URL(options.server).origin;
    const token = await fetchGitHubToken(requestUrl, requestToken, audience, options);
    return { token: checked(token, "the GitHub Actions token endpoint's answer"), source: "GitHub Actions" };
  }
  throw new CliError(`no token found: ${TOKEN_SOURCES_HELP}`);
}

function checked(raw: string, what: string): string {
  const token = raw.trim();
  if (token === "") throw new CliError(`${what} is empty: expected a bearer token`);
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES || !B64TOKEN.test(token)) {
    throw new CliError(`${what} does not hold a bearer token (one line of base64url and dots)`);
  }
  return token;
}

async function fetchGitHubToken(
  requestUrl: string,
  requestToken: string,
  audience: string,
  options: TokenSourceOptions,
): Promise<string> {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    throw new CliError("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL");
  }
  // GitHub's toolkit appends `&audience=…` to the URL it is given; setting the parameter is the same
  // request and stays correct if the URL ever arrives without a query.
  url.searchParams.set("audience", audience);
  const doFetch = options.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, {
      headers: { authorization: `bearer ${requestToken}`, accept: "application/json" },
      redirect: "error",
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (err) {
    throw new CliError(`cannot get a token from GitHub Actions (${url.host}): ${reasonOf(err)}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new CliError(
      `GitHub Actions refused the token request (HTTP ${res.status}); does the job have \`permissions: id-token: write\`?`,
    );
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new CliError("GitHub Actions answered the token request with something that is not JSON");
  }
  const parsed = GitHubTokenAnswer.safeParse(body);
  if (!parsed.success) throw new CliError("GitHub Actions answered the token request without a `value`");
  return parsed.data.value;
}

/** A short, token-free reason for a failed fetch (its `cause` code when there is one). */
export function reasonOf(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return "timed out";
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === "string") return cause.code;
  if (typeof cause?.message === "string") return cause.message;
  return err instanceof Error ? err.message : String(err);
}
