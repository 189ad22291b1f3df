import type { ParsedRemote } from "./remote.ts";
import type { GitAuth } from "./types.ts";

/**
 * The GIT_ASKPASS helper Ferry writes into its own directory. It holds no secret: git runs it with
 * the prompt ("Username for 'https://host': ", "Password for 'https://user@host': ") and it answers
 * from the environment of that git process, which other users cannot read (unlike a command line).
 * It answers only for the remote's own host, so a redirect to another host never gets the token.
 */
export const ASKPASS_SCRIPT = `#!/bin/sh
# Ferry's GIT_ASKPASS (written by Ferry; holds no secret). See docs/gitops.md#git.
url=\${1#*\\'}
url=\${url%\\'*}
authority=\${url#*://}
authority=\${authority%%/*}
host=\${authority##*@}
if [ -z "\${FERRY_GIT_HOST:-}" ] || [ "$host" != "$FERRY_GIT_HOST" ]; then
  echo "ferry-askpass: no credentials for this host" >&2
  exit 1
fi
case "$1" in
  Username*) printf '%s\\n' "$FERRY_GIT_USERNAME" ;;
  Password*) printf '%s\\n' "$FERRY_GIT_TOKEN" ;;
  *) exit 1 ;;
esac
`;

/** Fixed settings for every command, through GIT_CONFIG_* (no config file of the machine counts). */
const CONFIG: [string, string][] = [
  // No hook runs: a repository's content must never become code Ferry executes.
  ["core.hooksPath", "/dev/null"],
  // No credential helper may store or offer a credential: the askpass helper is the only source.
  ["credential.helper", ""],
  ["protocol.version", "2"],
  ["init.defaultBranch", "main"],
  ["advice.detachedHead", "false"],
  ["commit.gpgSign", "false"],
  // Garbage collection inline, never detached: a background gc would hold locks past our command.
  ["gc.autoDetach", "false"],
  ["maintenance.auto", "false"],
  ["core.fsmonitor", "false"],
];

/** Quotes a word for the shell that git runs GIT_SSH_COMMAND with. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The ssh command for an SSH remote: this key only, these host keys only, never a prompt, and
 * none of the machine's ssh config (`-F none`, no global known_hosts, no agent). Paths, no secret.
 */
export function sshCommand(
  auth: Extract<GitAuth, { kind: "ssh" }> | undefined,
  connectTimeoutS: number,
): string {
  const words = ["ssh", "-F", "none"];
  if (auth) words.push("-i", shellQuote(auth.privateKeyFile));
  words.push(
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    auth ? `UserKnownHostsFile=${shellQuote(auth.knownHostsFile)}` : "UserKnownHostsFile=/dev/null",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "UpdateHostKeys=no",
    "-o",
    "BatchMode=yes",
    "-o",
    `ConnectTimeout=${connectTimeoutS}`,
  );
  return words.join(" ");
}

/** What {@link gitEnv} needs to know. */
export interface GitEnvInput {
  remote: ParsedRemote;
  auth: GitAuth | undefined;
  /** Ferry's own HOME for git (empty: no user config). */
  home: string;
  askpassFile: string;
  timeoutMs: number;
}

/**
 * The complete environment of a git child: nothing inherited but PATH, so no proxy, credential,
 * agent socket or config of the host leaks in (GIT_CONFIG_NOSYSTEM, HOME is Ferry's, LANG=C so
 * {@link classifyGitFailure} reads English). Only http and ssh transports (no `ext::`, no `file`).
 */
export function gitEnv(input: GitEnvInput): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: input.home,
    XDG_CONFIG_HOME: input.home,
    LANG: "C",
    LC_ALL: "C",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    // The file transport only for a file:// remote, which only dev mode allows (parseRemote).
    GIT_ALLOW_PROTOCOL: input.remote.transport === "file" ? "file" : "http:https:ssh",
    GIT_LITERAL_PATHSPECS: "1",
    GIT_ASKPASS: input.askpassFile,
    GIT_SSH_COMMAND: sshCommand(
      input.auth?.kind === "ssh" ? input.auth : undefined,
      Math.max(1, Math.ceil(input.timeoutMs / 1000)),
    ),
    GIT_CONFIG_COUNT: String(CONFIG.length),
  };
  CONFIG.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  // The helper refuses to answer without FERRY_GIT_HOST: a remote without a token gets no answer.
  if (input.auth?.kind === "token") {
    env.FERRY_GIT_HOST = input.remote.host;
    env.FERRY_GIT_USERNAME = input.auth.username ?? "x-access-token";
    env.FERRY_GIT_TOKEN = input.auth.token;
  }
  return env;
}

/** The secrets {@link scrubCredentials} must remove from anything git says about this remote. */
export function secretsOf(auth: GitAuth | undefined): string[] {
  if (auth?.kind !== "token") return [];
  const user = auth.username ?? "x-access-token";
  return [auth.token, `${user}:${auth.token}`];
}
