import { cpSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { run } from "../support/proc.ts";

/**
 * The `ferry` command as a user installs it: the compiled JavaScript under `dist/`, started by
 * `bin/ferry.js`, run from a folder outside the checkout. Built here into a temp "installation"
 * (bin, dist, package.json, openapi.yaml, and the checkout's node_modules linked in), so the test
 * never depends on a `dist/` left in the working tree.
 */

const REPO = path.resolve(import.meta.dirname, "../..");
const NODE24 = process.execPath;
let install: string;
let elsewhere: string;

beforeAll(async () => {
  install = mkdtempSync(path.join(tmpdir(), "ferry-install-"));
  elsewhere = mkdtempSync(path.join(tmpdir(), "ferry-cwd-"));
  mkdirSync(path.join(install, "bin"));
  cpSync(path.join(REPO, "bin/ferry.js"), path.join(install, "bin/ferry.js"));
  cpSync(path.join(REPO, "package.json"), path.join(install, "package.json"));
  cpSync(path.join(REPO, "openapi.yaml"), path.join(install, "openapi.yaml"));
  symlinkSync(path.join(REPO, "node_modules"), path.join(install, "node_modules"));
  const tsc = await run(
    path.join(REPO, "node_modules/.bin/tsc"),
    ["-p", path.join(REPO, "tsconfig.build.json"), "--outDir", path.join(install, "dist")],
    { cwd: REPO },
  );
  expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
}, 120_000);

describe("the installed ferry command", () => {
  it("runs the compiled CLI from a folder outside the checkout", async () => {
    const help = await run(NODE24, [path.join(install, "bin/ferry.js"), "--help"], { cwd: elsewhere });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: ferry/);
    const check = await run(
      NODE24,
      [path.join(install, "bin/ferry.js"), "config", "check", path.join(REPO, "examples/ferry.dev.yaml")],
      { cwd: elsewhere, env: { PATH: process.env.PATH ?? "" } },
    );
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/ferry\.dev\.yaml: ok/);
  });

  it("says in one line what to do when it has not been built", async () => {
    const bare = mkdtempSync(path.join(tmpdir(), "ferry-unbuilt-"));
    mkdirSync(path.join(bare, "bin"));
    cpSync(path.join(REPO, "bin/ferry.js"), path.join(bare, "bin/ferry.js"));
    const res = await run(NODE24, [path.join(bare, "bin/ferry.js"), "--help"], { cwd: elsewhere });
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/not built; run `npm run build`/);
  });

  it("refuses a Node older than 24 with one clear line, before loading anything", async () => {
    // The machine's own Node (Debian's, on PATH outside npm scripts) is older than the pinned one
    // here; where it is not, the same command must simply work.
    const systemNode = (
      await run("/usr/bin/env", [
        "-i",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "node",
        "-p",
        "process.versions.node",
      ])
    ).stdout.trim();
    const res = await run(
      "/usr/bin/env",
      ["-i", "PATH=/usr/local/bin:/usr/bin:/bin", "node", path.join(install, "bin/ferry.js"), "--help"],
      {
        cwd: elsewhere,
      },
    );
    if (Number(systemNode.split(".")[0]) < 24) {
      expect(res.code).toBe(2);
      expect(res.stderr.trim().split("\n")).toHaveLength(1);
      expect(res.stderr).toContain(`needs Node.js 24 or newer, this is v${systemNode}`);
      expect(res.stdout).toBe("");
    } else {
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/Usage: ferry/);
    }
  });
});
