import { execFileSync } from "node:child_process";
import { chown, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { getFreePort, LOOPBACK } from "./net.ts";
import { makeTempDir, onProcessExit, run, runOk } from "./proc.ts";

/** A running PostgreSQL cluster; see {@link startPostgres}. */
export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth: no password). */
  url: string;
  port: number;
  /** Creates an empty database and returns its URL; names are limited to [A-Za-z0-9_]. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Finds the newest `/usr/lib/postgresql/<major>/bin` (Debian layout), or PATH as a fallback. */
async function findPgBin(): Promise<string | undefined> {
  try {
    const majors = (await readdir("/usr/lib/postgresql"))
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0] !== undefined) return `/usr/lib/postgresql/${majors[0]}/bin`;
  } catch {
    // Not Debian's layout: rely on PATH.
  }
  return undefined;
}

/** uid/gid of the `postgres` account, read from /etc/passwd (no extra process needed). */
async function postgresAccount(): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile("/etc/passwd", "utf8");
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === "postgres" && uid !== undefined && gid !== undefined) {
      return { uid: Number(uid), gid: Number(gid) };
    }
  }
  throw new Error("no postgres user on this machine: run scripts/install-test-deps.sh");
}

/**
 * initdb's a fresh cluster in a temp dir and starts it with `pg_ctl` on 127.0.0.1 (unix socket in the
 * temp dir, fsync off: durability is worthless for a throwaway test database). initdb and pg_ctl
 * refuse to run as root, so when the tests run as root both run as the `postgres` user.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const binDir = await findPgBin();
  const bin = (name: string) => (binDir ? join(binDir, name) : name);
  const asUser = process.getuid?.() === 0 ? await postgresAccount() : undefined;
  const tmp = await makeTempDir("postgres");
  if (asUser) await chown(tmp.path, asUser.uid, asUser.gid);
  const dataDir = join(tmp.path, "data");
  const logFile = join(tmp.path, "postgres.log");
  const env = { ...process.env, LC_ALL: "C", PGTZ: "UTC" };
  const runAs = { env, uid: asUser?.uid, gid: asUser?.gid };
  let unregisterExit: (() => void) | undefined;
  try {
    await runOk(
      bin("initdb"),
      ["-D", dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"],
      runAs,
    );
    // The port is probed free just before start; on a rare clash pg_ctl fails and we try another.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await getFreePort();
      const options = [
        `-h ${LOOPBACK}`,
        `-p ${port}`,
        `-k ${tmp.path}`,
        "-c fsync=off",
        "-c synchronous_commit=off",
        "-c full_page_writes=off",
      ].join(" ");
      const res = await run(
        bin("pg_ctl"),
        ["start", "-D", dataDir, "-l", logFile, "-w", "-t", "30", "-o", options],
        runAs,
      );
      if (res.code === 0) break;
      const log = await readFile(logFile, "utf8").catch(() => "");
      if (attempt >= 3 || !/could not bind|Address already in use/.test(log)) {
        throw new Error(`pg_ctl start failed (${res.code}): ${res.stderr.trim()}\n${log.slice(-4000)}`);
      }
    }
    // pg_ctl daemonizes the server: if the test process dies without stop(), shut it down at exit.
    unregisterExit = onProcessExit(() => {
      execFileSync(bin("pg_ctl"), ["stop", "-D", dataDir, "-m", "immediate"], {
        stdio: "ignore",
        uid: asUser?.uid,
        gid: asUser?.gid,
      });
    });

    const url = `postgres://postgres@${LOOPBACK}:${port}/postgres`;
    return {
      url,
      port,
      async createDatabase(name: string) {
        if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsafe database name: ${name}`);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE "${name}"`);
        } finally {
          await client.end();
        }
        return `postgres://postgres@${LOOPBACK}:${port}/${name}`;
      },
      async stop() {
        // Immediate: no checkpoint, the data is thrown away anyway.
        await run(bin("pg_ctl"), ["stop", "-D", dataDir, "-m", "immediate", "-w"], runAs);
        unregisterExit?.();
        await tmp.remove();
      },
    };
  } catch (err) {
    unregisterExit?.();
    await run(bin("pg_ctl"), ["stop", "-D", dataDir, "-m", "immediate"], runAs);
    await tmp.remove();
    if (err instanceof Error && /ENOENT|cannot start/.test(err.message)) {
      err.message += " (is PostgreSQL installed? run scripts/install-test-deps.sh)";
    }
    throw err;
  }
}
