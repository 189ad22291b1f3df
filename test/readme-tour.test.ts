import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findCosign } from "./support/cosign.ts";
import { getFreePort, waitForHttp } from "./support/net.ts";
import { makeTempDir, onProcessExit, run } from "./support/proc.ts";

/**
 * The README's "A five-minute tour", run as written: its `sh` blocks are extracted from README.md
 * (so the two cannot drift) and run with `bash -e` in a clean copy of the checkout (the files git
 * knows, no `data/`), against `npm start` there, on a free port (FERRY_LISTEN, which the dev config
 * and the tour both read). What the tour reached is then checked from the outside: the digest in the
 * production layout, the GitOps commit, and cosign's verdict on the summary.
 */

const REPO = path.resolve(import.meta.dirname, "..");
const HEADING = "## A five-minute tour";

/** The `sh` code blocks of one `## ` section of a Markdown text, in order. */
function tourBlocks(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "${heading}" section`);
  const rest = markdown.slice(start + heading.length + 2);
  const end = rest.search(/\n## /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The checkout as a fresh clone has it: the files git tracks or would (ignored ones left out). */
function cleanCopy(to: string): void {
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f !== "" && existsSync(path.join(REPO, f)));
  for (const file of files) {
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    cpSync(path.join(REPO, file), path.join(to, file));
  }
  // The installed packages, as `npm start`'s prestart would install them (read-only use).
  symlinkSync(path.join(REPO, "node_modules"), path.join(to, "node_modules"));
}

/**
 * `npm start` in its own process group: npm runs the server through `sh -c`, and a signal to npm
 * alone leaves the server running, so the whole group is signalled.
 */
function npmStart(cwd: string, env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn("npm", ["start"], {
    cwd,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const append = (b: Buffer) => {
    output = (output + b.toString("utf8")).slice(-256 * 1024);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      status = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve();
    });
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is gone already.
    }
  };
  const unregister = onProcessExit(() => signalGroup("SIGKILL"));
  return {
    output: () => output,
    exitStatus: () => status,
    async stop() {
      signalGroup("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), 10_000);
      await exited;
      // npm may exit before the server it started has drained: wait for the group to be empty.
      for (let i = 0; i < 200; i++) {
        try {
          process.kill(-child.pid!, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      clearTimeout(timer);
      signalGroup("SIGKILL");
      unregister();
    },
  };
}

describe("the README tour", () => {
  let dir: { path: string; remove: () => Promise<void> };
  let ferry: ReturnType<typeof npmStart>;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = await makeTempDir("readme-tour");
    cleanCopy(dir.path);
    // `npx ferry` runs dist/, which a clone's `npm ci` builds (prepare): build it from this copy.
    const built = await run(path.join(REPO, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json"], {
      cwd: dir.path,
      timeoutMs: 300_000,
    });
    expect(built.stdout + built.stderr).toBe("");
    const port = await getFreePort();
    env = {
      PATH: `${path.dirname(findCosign())}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      HOME: dir.path,
      FERRY_LISTEN: `127.0.0.1:${port}`,
      // cosign and git never need the network here: a dead proxy makes any attempt fail at once.
      HTTPS_PROXY: "http://127.0.0.1:9",
      NO_PROXY: "127.0.0.1,localhost",
      npm_config_update_notifier: "false",
    };
    ferry = npmStart(dir.path, env);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, {
      timeoutMs: 60_000,
      accept: (s) => s === 200,
      abort: () => ferry.exitStatus(),
    });
  }, 420_000);

  afterAll(async () => {
    await ferry?.stop();
    await dir?.remove();
  });

  it("reaches a promoted production digest whose signed summary cosign verifies", async () => {
    const blocks = tourBlocks(readFileSync(path.join(dir.path, "README.md"), "utf8"), HEADING);
    expect(blocks.length).toBeGreaterThan(0);
    // The tour as written, then one line of this test's own to report what it reached.
    const script = `${blocks.join("\n")}\necho "TOUR DIGEST=$DIGEST ID=$ID"\n`;
    const tour = await run("bash", ["-e", "-c", script], { cwd: dir.path, env, timeoutMs: 300_000 });
    const output = `${tour.stdout}\n${tour.stderr}\n--- npm start ---\n${ferry.output()}`;
    expect(tour.code, output).toBe(0);

    const reached = /TOUR DIGEST=(sha256:[0-9a-f]{64}) ID=(\S+)/.exec(tour.stdout);
    expect(reached, output).not.toBeNull();
    const [, digest] = reached!;
    expect(tour.stdout).toContain(`promoted demo ${digest!.slice(0, 19)} to production`);
    expect(tour.stderr).toContain("Verified OK");
    expect(tour.stdout).toMatch(/audit log ok: \d+ entries/);

    // The production layout lists the digest as a top-level manifest.
    const index = JSON.parse(readFileSync(path.join(dir.path, "data/layouts/production/index.json"), "utf8"));
    expect(index.manifests.map((m: { digest: string }) => m.digest)).toContain(digest);
    // The GitOps commit pins it.
    const log = await run("git", ["-C", "data/gitops/demo.git", "log", "-1", "--format=%B"], {
      cwd: dir.path,
      env,
    });
    expect(log.stdout).toContain(`Ferry-Digest: ${digest}`);
    const values = await run("git", ["-C", "data/gitops/demo.git", "show", "HEAD:production/values.yaml"], {
      cwd: dir.path,
      env,
    });
    expect(values.stdout).toContain(`digest: "${digest}"`);
    // The server said at start that it accepts dev tokens.
    expect(ferry.output()).toMatch(/dev mode: accepting tokens of a dev issuer/);
  }, 420_000);
});
