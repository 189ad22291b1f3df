import { existsSync, rmSync, writeFileSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { getFreePort, LOOPBACK, waitForPort } from "./net.ts";
import { makeTempDir, runOk, startProcess } from "./proc.ts";

/** Debian's sshd: an absolute path, because sshd re-executes itself and refuses a relative one. */
export const SSHD = "/usr/sbin/sshd";

/** Options for {@link startSshGitServer}. */
export interface SshGitServerOptions {
  /** Directory of bare repos (`<name>.git`) to serve, e.g. a {@link TestGitServer}'s `root`. */
  root: string;
}

/** A key pair made by {@link TestSshGitServer.newKey}. */
export interface TestSshKey {
  /** Private key file, mode 0600 (ssh refuses one that others can read). */
  privateKeyFile: string;
  /** `ssh-ed25519 AAAA… comment` */
  publicKey: string;
}

/** A running sshd that serves git over SSH; see {@link startSshGitServer}. */
export interface TestSshGitServer {
  port: number;
  /** `ssh://<user>@127.0.0.1:PORT/<name>.git` */
  url(name: string): string;
  /** The client key the server authorises. */
  clientKey: TestSshKey;
  /** A known_hosts file holding exactly this server's host key for `[127.0.0.1]:PORT`. */
  knownHostsFile: string;
  /** The known_hosts line of {@link knownHostsFile}. */
  knownHostsLine: string;
  /** A fresh key pair the server does not authorise (a wrong key, or a wrong host key to pin). */
  newKey(name: string): Promise<TestSshKey>;
  /**
   * Holds every new git session (after auth, before git runs) until the returned function is
   * called: a test watches the client while it waits. `held()` resolves once a session waits.
   */
  hold(): { held: Promise<void>; release: () => Promise<void> };
  /** Recent sshd log (LogLevel VERBOSE), for diagnosing a failed test. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The forced command of the authorised key: only `git-upload-pack` and `git-receive-pack` of a
 * repo under the root, run through git-shell (which allows nothing else either).
 */
function forcedCommand(root: string, home: string, holdFile: string, heldFile: string): string {
  return `#!/bin/sh
set -eu
while [ -e '${holdFile}' ]; do
  : > '${heldFile}'
  sleep 0.05
done
cmd=\${SSH_ORIGINAL_COMMAND:-}
case "$cmd" in
  "git-upload-pack '"*"'" | "git-receive-pack '"*"'") ;;
  *) echo "test sshd: only git fetch and push are served" >&2; exit 1 ;;
esac
verb=\${cmd%% *}
path=\${cmd#* \\'}
path=\${path%\\'}
path=\${path#/}
case "$path" in
  "" | *..* | *\\'*) echo "test sshd: bad repository path" >&2; exit 1 ;;
esac
export GIT_CONFIG_NOSYSTEM=1 HOME='${home}'
cd '${root}'
exec git-shell -c "$verb '$path'"
`;
}

async function keygen(dir: string, name: string): Promise<TestSshKey> {
  const privateKeyFile = join(dir, name);
  await runOk("ssh-keygen", [
    "-q",
    "-t",
    "ed25519",
    "-N",
    "",
    "-C",
    `ferry-test-${name}`,
    "-f",
    privateKeyFile,
  ]);
  await chmod(privateKeyFile, 0o600);
  return { privateKeyFile, publicKey: (await readFile(`${privateKeyFile}.pub`, "utf8")).trim() };
}

/**
 * Starts Debian's `sshd` in the foreground on 127.0.0.1 with a config of its own (nothing from
 * /etc/ssh): a generated host key, one authorised client key whose forced command serves the bare
 * repos of `root` through git-shell, public-key auth only, for the current user only. Resolves once
 * the port accepts connections. Run as root, sshd needs its privilege separation directory
 * /run/sshd (made here when missing: /run is a tmpfs that a reboot empties) and the `sshd` user
 * that Debian's openssh-server package creates; install it with scripts/install-test-deps.sh.
 */
export async function startSshGitServer(opts: SshGitServerOptions): Promise<TestSshGitServer> {
  const tmp = await makeTempDir("sshd");
  try {
    const user = userInfo().username;
    if (process.getuid?.() === 0) await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    const keys = join(tmp.path, "keys");
    const home = join(tmp.path, "home");
    await mkdir(keys, { mode: 0o700 });
    await mkdir(home);
    const hostKey = await keygen(keys, "host");
    const clientKey = await keygen(keys, "client");
    const command = join(tmp.path, "git-command.sh");
    const holdFile = join(tmp.path, "hold");
    const heldFile = join(tmp.path, "held");
    await writeFile(command, forcedCommand(opts.root, home, holdFile, heldFile), { mode: 0o755 });
    const authorizedKeys = join(tmp.path, "authorized_keys");
    await writeFile(authorizedKeys, `restrict,command="${command}" ${clientKey.publicKey}\n`, {
      mode: 0o600,
    });
    const port = await getFreePort();
    const config = join(tmp.path, "sshd_config");
    await writeFile(
      config,
      [
        `Port ${port}`,
        `ListenAddress ${LOOPBACK}`,
        `HostKey ${hostKey.privateKeyFile}`,
        "PidFile none",
        `AuthorizedKeysFile ${authorizedKeys}`,
        // The temp dir's modes are not what StrictModes wants for a home directory.
        "StrictModes no",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        `AllowUsers ${user}`,
        // Protocol v2 of git travels in this variable.
        "AcceptEnv GIT_PROTOCOL",
        "PermitTTY no",
        "AllowTcpForwarding no",
        "X11Forwarding no",
        "MaxStartups 100:30:200",
        // The post-quantum default kex costs a second of CPU per connection on a loaded test machine.
        "KexAlgorithms curve25519-sha256",
        "LogLevel VERBOSE",
        "",
      ].join("\n"),
    );
    const pub = hostKey.publicKey.split(" ");
    const knownHostsLine = `[${LOOPBACK}]:${port} ${pub[0]} ${pub[1]}`;
    const knownHostsFile = join(tmp.path, "known_hosts");
    await writeFile(knownHostsFile, `${knownHostsLine}\n`);

    const proc = startProcess(SSHD, ["-D", "-e", "-f", config], { env: { PATH: process.env.PATH } });
    try {
      await waitForPort(port, {
        timeoutMs: 20_000,
        abort: () => {
          const status = proc.exitStatus();
          return status && `sshd ${status}: ${proc.output().trim()}`;
        },
      });
    } catch (err) {
      await proc.stop();
      throw err;
    }
    let n = 0;
    return {
      port,
      url: (name) => `ssh://${user}@${LOOPBACK}:${port}/${name.endsWith(".git") ? name : `${name}.git`}`,
      clientKey,
      knownHostsFile,
      knownHostsLine,
      newKey: (name) => keygen(keys, `${name}-${++n}`),
      hold() {
        rmSync(heldFile, { force: true });
        writeFileSync(holdFile, "");
        const held = (async () => {
          while (!existsSync(heldFile)) await new Promise((r) => setTimeout(r, 20));
        })();
        return {
          held,
          release: async () => {
            await rm(holdFile, { force: true });
          },
        };
      },
      output: proc.output,
      async stop() {
        await proc.stop();
        await tmp.remove();
      },
    };
  } catch (err) {
    await tmp.remove();
    if (err instanceof Error && /ENOENT|could not start/.test(err.message)) {
      err.message += " (is openssh-server installed? run scripts/install-test-deps.sh)";
    }
    throw err;
  }
}
