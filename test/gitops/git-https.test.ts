// The git layer against a real `git http-backend` with HTTP Basic auth (token), on loopback.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GitError, type GitRemote, GitWorkspace, type WorkingCopy } from "../../src/gitops/git.ts";
import { type GitRequest, git, startGitServer, type TestGitServer } from "../support/git-server.ts";
import { getFreePort } from "../support/net.ts";
import { makeTempDir, run, runOk } from "../support/proc.ts";

const TOKEN = `tok-${randomBytes(18).toString("hex")}`;
const WRONG = `wrong-${randomBytes(18).toString("hex")}`;
const BOT = { name: "Ferry", email: "ferry@example.invalid" };
const HUMAN = { name: "Release Captain", email: "captain@example.invalid" };

let server: TestGitServer;
let tmp: { path: string; remove: () => Promise<void> };
let hook: ((r: GitRequest) => Promise<void> | void) | undefined;
let repoCount = 0;

beforeAll(async () => {
  server = await startGitServer({
    username: "x-access-token",
    password: TOKEN,
    beforeBackend: (r) => hook?.(r),
  });
  tmp = await makeTempDir("git-https");
});
afterAll(async () => {
  await server?.stop();
  await tmp?.remove();
});
beforeEach(() => {
  hook = undefined;
});

/** A fresh repo on the server, and a remote for it with the right token. */
async function newRepo(
  files: Record<string, string> = { "env/prod/values.yaml": "image: web@sha256:aaa\n" },
) {
  const name = `app${++repoCount}`;
  await server.createRepo(name, files);
  const remote: GitRemote = { url: `${server.baseUrl}/${name}.git`, auth: { kind: "token", token: TOKEN } };
  return { name, remote };
}

function workspace(options: { timeoutMs?: number; dir?: string } = {}): GitWorkspace {
  return new GitWorkspace({
    dir: options.dir ?? join(tmp.path, `ws-${randomBytes(4).toString("hex")}`),
    ...options,
  });
}

/** Someone else's commit, pushed straight to the server (the URL with credentials is test-only). */
async function foreignCommit(
  name: string,
  files: Record<string, string>,
  message = "Foreign change",
): Promise<string> {
  const home = join(tmp.path, "foreign-home");
  await mkdir(home, { recursive: true });
  const work = join(tmp.path, `foreign-${randomBytes(4).toString("hex")}`);
  const ok = async (args: string[], cwd?: string) => {
    const r = await git(args, { cwd, home });
    if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  await ok(["clone", "--quiet", server.url(name), work]);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(work, path, ".."), { recursive: true });
    await writeFile(join(work, path), content);
  }
  await ok(["add", "--all"], work);
  await ok(["commit", "--quiet", "-m", message], work);
  await ok(["push", "--quiet", "origin", "HEAD:main"], work);
  return (await ok(["rev-parse", "HEAD"], work)).trim();
}

async function caught(p: Promise<unknown>): Promise<GitError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GitError);
  return err as GitError;
}

/** Every file under `dir`, as one string, to look for a secret anywhere in the workspace. */
async function allBytes(dir: string): Promise<string> {
  let out = "";
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out += (await readFile(join(entry.parentPath, entry.name))).toString("latin1");
  }
  return out;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("GitWorkspace over HTTP with a token", () => {
  it("clones blobless, syncs, commits and pushes with the configured author and committer", async () => {
    const { name, remote } = await newRepo({ "env/prod/values.yaml": "image: web@sha256:aaa\n" });
    const oldBlobCommit = await foreignCommit(name, { "env/prod/values.yaml": "image: web@sha256:bbb\n" });
    const dir = join(tmp.path, "ws-main");
    const ws = workspace({ dir });
    const pushed = await ws.with(remote, async (wc) => {
      const head = await wc.sync("main");
      expect(head).toBe(oldBlobCommit);
      expect(await wc.readFile("env/prod/values.yaml")).toBe("image: web@sha256:bbb\n");
      expect(await wc.readFile("./env//prod/values.yaml")).toBe("image: web@sha256:bbb\n");
      expect(await wc.readFile("env/prod/missing.yaml")).toBeUndefined();
      await wc.writeFile("env/prod/values.yaml", "image: web@sha256:ccc\n");
      await wc.writeFile("env/new/dir/file.yaml", "a: 1\n");
      const sha = await wc.commit("Promote web\n\nFerry-Promotion: p1\n", BOT, HUMAN);
      expect(await wc.push("main")).toBe("pushed");
      return sha;
    });
    const [top] = await server.log(name, "main");
    expect(top?.sha).toBe(pushed);
    expect(top?.subject).toBe("Promote web");
    expect(top?.body).toBe("Ferry-Promotion: p1");
    expect([top?.authorName, top?.authorEmail]).toEqual([BOT.name, BOT.email]);
    const committer = await runOk("git", [
      "--git-dir",
      join(server.root, `${name}.git`),
      "log",
      "-1",
      "--format=%cn <%ce>",
      "main",
    ]);
    expect(committer.trim()).toBe(`${HUMAN.name} <${HUMAN.email}>`);
    expect(await server.readFile(name, "main", "env/prod/values.yaml")).toBe("image: web@sha256:ccc\n");
    expect(await server.readFile(name, "main", "env/new/dir/file.yaml")).toBe("a: 1\n");

    // A blobless partial clone: the first commit's blob of values.yaml was never downloaded.
    const repo = join(dir, "repos", (await readdir(join(dir, "repos")))[0]!);
    const env = {
      PATH: process.env.PATH,
      HOME: tmp.path,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_DIR: join(repo, ".git"),
    };
    const missing = await runOk("git", ["rev-list", "--objects", "--missing=print", "--all"], { env });
    const oldBlob = (
      await runOk("git", [
        "--git-dir",
        join(server.root, `${name}.git`),
        "rev-parse",
        `${oldBlobCommit}~1:env/prod/values.yaml`,
      ])
    ).trim();
    expect(missing).toContain(`?${oldBlob}`);
    expect(await runOk("git", ["config", "--get", "remote.origin.partialclonefilter"], { env })).toBe(
      "blob:none\n",
    );
  });

  it("lists the branch's commits newest first with their full messages, at most the limit", async () => {
    const { name, remote } = await newRepo();
    await foreignCommit(name, { "a.txt": "1\n" }, "Second\n\nwith a body");
    await workspace().with(remote, async (wc) => {
      await wc.sync("main");
      await wc.writeFile("b.txt", "2\n");
      const sha = await wc.commit("Third\n\nFerry-Promotion: p9\nFerry-Digest: sha256:abc", BOT, BOT);
      expect(await wc.push("main")).toBe("pushed");
      const log = await wc.log("main", 2);
      expect(log).toEqual([
        { sha, message: "Third\n\nFerry-Promotion: p9\nFerry-Digest: sha256:abc" },
        { sha: expect.stringMatching(/^[0-9a-f]{40}$/), message: "Second\n\nwith a body" },
      ]);
      expect(await wc.log("main", 10)).toHaveLength(3);
    });
  });

  it("never makes an empty commit", async () => {
    const { name, remote } = await newRepo({ "v.yaml": "x: 1\n" });
    await workspace().with(remote, async (wc) => {
      await wc.sync("main");
      expect((await caught(wc.commit("Nothing", BOT, BOT))).reason).toBe("git_failed");
      await wc.writeFile("v.yaml", "x: 1\n");
      expect((await caught(wc.commit("Same content", BOT, BOT))).message).toMatch(/nothing to commit/);
    });
    expect(await server.log(name, "main")).toHaveLength(1);
  });

  it("reports a push behind someone else's as rejected, and lands it after a re-sync", async () => {
    const { name, remote } = await newRepo({ "a.yaml": "a: 1\n", "b.yaml": "b: 1\n" });
    const ws = workspace();
    await ws.with(remote, async (wc) => {
      await wc.sync("main");
      const foreign = await foreignCommit(name, { "b.yaml": "b: 2\n" });
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("Ours", BOT, BOT);
      expect(await wc.push("main")).toBe("rejected");
      // Re-apply on the new head (not a rebase): the foreign commit is kept.
      expect(await wc.sync("main")).toBe(foreign);
      expect(await wc.readFile("a.yaml")).toBe("a: 1\n");
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("Ours, again", BOT, BOT);
      expect(await wc.push("main")).toBe("pushed");
    });
    const log = await server.log(name, "main");
    expect(log.map((c) => c.subject)).toEqual(["Ours, again", "Foreign change", "Initial commit"]);
    expect(await server.readFile(name, "main", "b.yaml")).toBe("b: 2\n");
  });

  it("force-pushes a pull-request branch, and refuses a non-fast-forward without force", async () => {
    const { name, remote } = await newRepo({ "a.yaml": "a: 1\n" });
    const ws = workspace();
    await ws.with(remote, async (wc) => {
      await wc.sync("main");
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("PR one", BOT, BOT);
      expect(await wc.push("ferry/web/prod", { force: true })).toBe("pushed");
      // A new base: the PR branch is rebuilt from it, which is not a fast-forward of the old one.
      await foreignCommit(name, { "c.yaml": "c: 1\n" });
      await wc.sync("main");
      await wc.writeFile("a.yaml", "a: 3\n");
      await wc.commit("PR two", BOT, BOT);
      expect(await wc.push("ferry/web/prod")).toBe("rejected");
      expect(await wc.push("ferry/web/prod", { force: true })).toBe("pushed");
      expect((await wc.log("ferry/web/prod", 1))[0]?.message).toBe("PR two");
    });
    expect(await server.readFile(name, "ferry/web/prod", "a.yaml")).toBe("a: 3\n");
    expect((await server.log(name, "ferry/web/prod")).map((c) => c.subject)).toEqual([
      "PR two",
      "Foreign change",
      "Initial commit",
    ]);
  });

  it("fails a push the server's hook declines (a protected branch) instead of calling it rejected", async () => {
    const { name, remote } = await newRepo({ "a.yaml": "a: 1\n" });
    const hook = join(server.root, `${name}.git`, "hooks", "pre-receive");
    await writeFile(hook, "#!/bin/sh\necho 'GH006: Protected branch update failed' >&2\nexit 1\n", {
      mode: 0o755,
    });
    await workspace().with(remote, async (wc) => {
      await wc.sync("main");
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("Blocked", BOT, BOT);
      const err = await caught(wc.push("main"));
      expect(err.reason).toBe("git_failed");
      expect(err.message).toMatch(/pre-receive hook declined/);
      expect(err.message).toMatch(/Protected branch/);
      expect(err.message).not.toContain(TOKEN);
    });
    expect(await server.log(name, "main")).toHaveLength(1);
  });

  it("reads a path at the remote head after a fetch, leaving the work tree alone", async () => {
    const { name, remote } = await newRepo({ "k.yaml": "v: 1\n" });
    await workspace().with(remote, async (wc) => {
      const first = await wc.sync("main");
      const head = await foreignCommit(name, { "k.yaml": "v: 2\n", "deep/x.yaml": "x\n" });
      expect(await wc.readRemote("main", "k.yaml")).toEqual({ sha: head, text: "v: 2\n" });
      expect(await wc.readRemote("main", "deep/x.yaml")).toEqual({ sha: head, text: "x\n" });
      expect(await wc.readRemote("main", "nope.yaml")).toEqual({ sha: head, text: undefined });
      expect((await caught(wc.readRemote("main", "deep"))).reason).toBe("git_failed");
      expect(await wc.readFile("k.yaml")).toBe("v: 1\n");
      expect(first).not.toBe(head);
    });
  });

  it("fails a missing branch with its name", async () => {
    const { remote } = await newRepo();
    await workspace().with(remote, async (wc) => {
      const err = await caught(wc.sync("release"));
      expect(err.reason).toBe("git_failed");
      expect(err.message).toMatch(/branch release does not exist/);
      expect((await caught(wc.log("release", 5))).reason).toBe("git_failed");
    });
  });

  it("fails a wrong token or no token as git_auth_failed, naming the remote without credentials", async () => {
    const { name, remote } = await newRepo();
    const wrong = await caught(
      workspace().with({ url: remote.url, auth: { kind: "token", token: WRONG } }, (wc) => wc.sync("main")),
    );
    expect(wrong.reason).toBe("git_auth_failed");
    expect(wrong.message).toContain(`${server.baseUrl}/${name}.git`);
    expect(wrong.message).not.toContain(WRONG);
    const none = await caught(workspace().with({ url: remote.url }, (wc) => wc.sync("main")));
    expect(none.reason).toBe("git_auth_failed");
    const user = await caught(
      workspace().with(
        { url: remote.url, auth: { kind: "token", username: "someone", token: TOKEN } },
        (wc) => wc.sync("main"),
      ),
    );
    expect(user.reason).toBe("git_auth_failed");
    for (const err of [wrong, none, user]) {
      expect(`${err.message}${String(err.cause ?? "")}`).not.toContain(TOKEN);
    }
  });

  it("fails a remote nobody listens on as git_unreachable", async () => {
    const port = await getFreePort();
    const err = await caught(
      workspace().with(
        { url: `http://127.0.0.1:${port}/x.git`, auth: { kind: "token", token: TOKEN } },
        (wc) => wc.sync("main"),
      ),
    );
    expect(err.reason).toBe("git_unreachable");
    expect(err.message).not.toContain(TOKEN);
  });

  it("refuses a URL with credentials in it, an unsupported transport, and a token over plain http to another host", async () => {
    const ws = workspace();
    const cases = [
      `http://x-access-token:${TOKEN}@127.0.0.1:1/a.git`,
      `https://${TOKEN}@example.invalid/a.git`,
      "ext::sh -c touch% /tmp/pwned",
      "file:///etc",
      "/srv/git/a.git",
      "-uhttps://example.invalid/a.git",
    ];
    for (const url of cases) {
      const err = await caught(ws.with({ url }, async () => "ran"));
      expect(err.reason, url).toBe("git_failed");
      expect(err.message).not.toContain(TOKEN);
    }
    const clear = await caught(
      ws.with(
        { url: "http://example.invalid/a.git", auth: { kind: "token", token: TOKEN } },
        async () => "ran",
      ),
    );
    expect(clear.message).toMatch(/plain http/);
  });

  it("refuses paths that leave the repository, enter .git or go through a symbolic link", async () => {
    const { name, remote } = await newRepo({ "ok.yaml": "ok\n" });
    // A repository may hold a symlink to anywhere; Ferry must neither follow nor write through it.
    const home = join(tmp.path, "foreign-home");
    await mkdir(home, { recursive: true });
    const work = join(tmp.path, `symlink-${randomBytes(4).toString("hex")}`);
    await git(["clone", "--quiet", server.url(name), work], { home });
    await runOk("ln", ["-s", "/etc", join(work, "etc")]);
    await runOk("ln", ["-s", "/etc/hostname", join(work, "host.yaml")]);
    for (const args of [
      ["add", "--all"],
      ["commit", "--quiet", "-m", "links"],
      ["push", "--quiet", "origin", "HEAD:main"],
    ]) {
      expect((await git(args, { cwd: work, home })).code).toBe(0);
    }
    await workspace().with(remote, async (wc) => {
      await wc.sync("main");
      for (const path of [
        "../outside",
        "/etc/passwd",
        "a/../../b",
        ".git/config",
        "x/.GIT/hooks/pre-commit",
        "",
      ]) {
        expect((await caught(wc.readFile(path))).reason, path).toBe("git_failed");
        expect((await caught(wc.writeFile(path, "x"))).reason, path).toBe("git_failed");
      }
      expect((await caught(wc.readFile("host.yaml"))).message).toMatch(/symbolic link/);
      expect((await caught(wc.readFile("etc/passwd"))).message).toMatch(/symbolic link/);
      expect((await caught(wc.writeFile("etc/ferry-was-here", "x"))).message).toMatch(/symbolic link/);
      expect((await caught(wc.writeFile("host.yaml", "x"))).message).toMatch(/symbolic link/);
      expect((await caught(wc.readRemote("main", "host.yaml"))).reason).toBe("git_failed");
      expect(await wc.readFile("ok.yaml")).toBe("ok\n");
    });
  });

  it("keeps the token out of .git/config, every workspace file, errors and `ps` while a push stalls", async () => {
    const { remote } = await newRepo({ "a.yaml": "a: 1\n" });
    const dir = join(tmp.path, "ws-ps");
    const ws = workspace({ dir });
    const stalled = deferred();
    const release = deferred();
    let psOutput = "";
    await ws.with(remote, async (wc) => {
      await wc.sync("main");
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("Slow push", BOT, BOT);
      hook = async (r) => {
        if (r.method === "POST" && r.service === "git-receive-pack") {
          stalled.resolve();
          await release.promise;
        }
      };
      const push = wc.push("main");
      await stalled.promise;
      // Every process's command line, twice, while git push and its helpers wait on the server.
      for (let i = 0; i < 2; i++) {
        psOutput += (await runOk("ps", ["-eo", "pid,args"])).toString();
        for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
          psOutput += await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
        }
      }
      release.resolve();
      expect(await push).toBe("pushed");
    });
    // The sample is worth something only if it caught the push in flight.
    expect(psOutput).toMatch(/git-remote-http|git push/);
    expect(psOutput).toContain(remote.url);
    const base64 = Buffer.from(`x-access-token:${TOKEN}`).toString("base64");
    for (const form of [TOKEN, base64, encodeURIComponent(TOKEN)]) {
      expect(psOutput).not.toContain(form);
      expect(await allBytes(dir)).not.toContain(form);
    }
    const config = await readFile(
      join(dir, "repos", (await readdir(join(dir, "repos")))[0]!, ".git", "config"),
      "utf8",
    );
    expect(config).toContain(`url = ${remote.url}`);
  });

  it("kills a stalled push and its helpers on abort", async () => {
    const { remote } = await newRepo({ "a.yaml": "a: 1\n" });
    const stalled = deferred();
    const never = deferred();
    const port = new URL(server.baseUrl).port;
    await workspace().with(remote, async (wc) => {
      await wc.sync("main");
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("Never lands", BOT, BOT);
      hook = async (r) => {
        if (r.method === "POST" && r.service === "git-receive-pack") {
          stalled.resolve();
          await never.promise;
        }
      };
      const abort = new AbortController();
      const push = wc.push("main", { signal: abort.signal });
      await stalled.promise;
      const before = await runOk("ps", ["-eo", "args"]);
      expect(before).toMatch(new RegExp(`git-remote-http origin http://127\\.0\\.0\\.1:${port}/`));
      abort.abort(new Error("lease lost"));
      const err = await caught(push);
      expect(err.message).toMatch(/aborted/);
      const after = await runOk("ps", ["-eo", "args"]);
      expect(after).not.toContain(remote.url);
    });
    never.resolve();
  });

  it("ends a fetch that outlives the time-out as git_unreachable", async () => {
    const { remote } = await newRepo();
    const never = deferred();
    hook = async (r) => {
      if (r.service === "git-upload-pack") await never.promise;
    };
    const err = await caught(workspace({ timeoutMs: 1_000 }).with(remote, (wc) => wc.sync("main")));
    expect(err.reason).toBe("git_unreachable");
    expect(err.message).toMatch(/did not finish within 1000 ms/);
    never.resolve();
  });
});

describe("GitWorkspace working copies", () => {
  async function repoDir(dir: string): Promise<string> {
    return join(dir, "repos", (await readdir(join(dir, "repos"))).find((n) => !n.includes(".tmp-"))!);
  }

  it("re-clones a copy that a crash left with lock files, a broken HEAD, a corrupt pack or a half-made clone", async () => {
    const { name, remote } = await newRepo({ "a.yaml": "a: 1\n" });
    const head = await foreignCommit(name, { "b.yaml": "b: 1\n" });
    const dir = join(tmp.path, "ws-crash");
    await workspace({ dir }).with(remote, (wc) => wc.sync("main"));
    const repo = await repoDir(dir);
    const refs = join(repo, ".git", "refs", "remotes", "origin");
    const crashes: [string, boolean, () => Promise<unknown>][] = [
      ["stale ref lock of a killed fetch", true, () => writeFile(join(refs, "main.lock"), "")],
      ["stale index lock", true, () => writeFile(join(repo, ".git", "index.lock"), "")],
      ["garbage HEAD", true, () => writeFile(join(repo, ".git", "HEAD"), "\0\0garbage")],
      [
        "truncated packs",
        true,
        async () => {
          const packs = join(repo, ".git", "objects", "pack");
          for (const f of await readdir(packs)) {
            if (f.endsWith(".pack")) await writeFile(join(packs, f), "PACK");
          }
        },
      ],
      ["an interrupted clone beside it", false, () => mkdir(`${repo}.tmp-1234`, { recursive: true })],
    ];
    for (const [what, reclones, crash] of crashes) {
      // A marker inside .git tells a re-clone (it is gone) from a copy that was fine as it was.
      await writeFile(join(repo, ".git", "ferry-test-marker"), "");
      await crash();
      // A new workspace object stands for a restarted Ferry.
      const got = await workspace({ dir }).with(remote, async (wc) => {
        const sha = await wc.sync("main");
        return { sha, b: await wc.readFile("b.yaml") };
      });
      expect(got, what).toEqual({ sha: head, b: "b: 1\n" });
      expect(await readdir(join(dir, "repos")), what).toEqual([repo.split("/").at(-1)]);
      const marker = await readFile(join(repo, ".git", "ferry-test-marker")).then(
        () => true,
        () => false,
      );
      expect(marker, what).toBe(!reclones);
    }
  });

  it("serialises work on one remote and runs different remotes side by side", async () => {
    const a = await newRepo();
    const b = await newRepo();
    const ws = workspace();
    const gate = deferred();
    const events: string[] = [];
    const first = ws.with(a.remote, async (wc: WorkingCopy) => {
      events.push("a1 start");
      await wc.sync("main");
      await gate.promise;
      events.push("a1 end");
    });
    const second = ws.with(a.remote, async () => {
      events.push("a2 start");
    });
    // The other remote finishes while the first still holds its lock.
    await ws.with(b.remote, async (wc) => {
      await wc.sync("main");
      events.push("b");
    });
    expect(events).not.toContain("a2 start");
    gate.resolve();
    await Promise.all([first, second]);
    expect(events.indexOf("a2 start")).toBeGreaterThan(events.indexOf("a1 end"));
  });

  it("refuses a working copy used after `with` returned", async () => {
    const { remote } = await newRepo();
    let kept: WorkingCopy | undefined;
    await workspace().with(remote, async (wc) => {
      kept = wc;
    });
    await expect(kept!.sync("main")).rejects.toThrow(/after GitWorkspace.with returned/);
  });
});

// The askpass helper itself: it answers only for the remote's host.
describe("the askpass helper", () => {
  it("gives the token for the remote's host and nothing for another", async () => {
    const dir = join(tmp.path, "ws-askpass");
    const { remote } = await newRepo();
    await workspace({ dir }).with(remote, async () => {});
    const askpass = join(dir, "bin", "askpass");
    const host = new URL(server.baseUrl).host;
    const env = {
      PATH: process.env.PATH,
      FERRY_GIT_HOST: host,
      FERRY_GIT_USERNAME: "x-access-token",
      FERRY_GIT_TOKEN: TOKEN,
    };
    expect((await run(askpass, [`Username for 'http://${host}': `], { env })).stdout).toBe(
      "x-access-token\n",
    );
    expect((await run(askpass, [`Password for 'http://x-access-token@${host}': `], { env })).stdout).toBe(
      `${TOKEN}\n`,
    );
    for (const prompt of [
      "Password for 'http://x-access-token@evil.example': ",
      `Password for 'http://x-access-token@${host}.evil.example': `,
      `Password for 'http://${host}@evil.example': `,
      "Password: ",
    ]) {
      const r = await run(askpass, [prompt], { env });
      expect(r.code, prompt).not.toBe(0);
      expect(r.stdout, prompt).toBe("");
    }
    const noHost = await run(askpass, [`Password for 'http://${host}': `], {
      env: { ...env, FERRY_GIT_HOST: "" },
    });
    expect(noHost.stdout).toBe("");
    expect(await readFile(askpass, "utf8")).not.toContain(TOKEN);
  });
});
