// The git layer over SSH against a real sshd (Debian openssh-server, test/support/sshd.ts) that
// serves the test git server's bare repos through git-shell, with a pinned known_hosts.

import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitError, type GitRemote, GitWorkspace } from "../../src/gitops/git.ts";
import { startGitServer, type TestGitServer } from "../support/git-server.ts";
import { makeTempDir, runOk } from "../support/proc.ts";
import { startSshGitServer, type TestSshGitServer } from "../support/sshd.ts";

const BOT = { name: "Ferry", email: "ferry@example.invalid" };

let http: TestGitServer;
let sshd: TestSshGitServer;
let tmp: { path: string; remove: () => Promise<void> };
let repoCount = 0;

beforeAll(async () => {
  http = await startGitServer();
  sshd = await startSshGitServer({ root: http.root });
  tmp = await makeTempDir("git-ssh");
});
afterAll(async () => {
  await sshd?.stop();
  await http?.stop();
  await tmp?.remove();
});

async function newRepo(files: Record<string, string> = { "values.yaml": "image: web@sha256:aaa\n" }) {
  const name = `ssh${++repoCount}`;
  await http.createRepo(name, files);
  const remote: GitRemote = {
    url: sshd.url(name),
    auth: { kind: "ssh", privateKeyFile: sshd.clientKey.privateKeyFile, knownHostsFile: sshd.knownHostsFile },
  };
  return { name, remote };
}

function workspace(dir = join(tmp.path, `ws-${randomBytes(4).toString("hex")}`)): GitWorkspace {
  return new GitWorkspace({ dir, timeoutMs: 30_000 });
}

async function caught(p: Promise<unknown>): Promise<GitError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GitError);
  return err as GitError;
}

/** The base64 body of a private key file: what must never leave it. */
async function keyMaterial(file: string): Promise<string[]> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("-----"))
    .filter((l) => l.length >= 20);
}

describe("GitWorkspace over SSH", () => {
  it("clones, commits and pushes with a key and a pinned host key", async () => {
    const { name, remote } = await newRepo();
    const dir = join(tmp.path, "ws-ssh-main");
    const sha = await workspace(dir).with(remote, async (wc) => {
      const head = await wc.sync("main");
      expect(head).toBe((await http.log(name, "main"))[0]?.sha);
      expect(await wc.readFile("values.yaml")).toBe("image: web@sha256:aaa\n");
      await wc.writeFile("values.yaml", "image: web@sha256:bbb\n");
      const commit = await wc.commit("Over SSH\n\nFerry-Promotion: s1", BOT, BOT);
      expect(await wc.push("main")).toBe("pushed");
      expect(await wc.readRemote("main", "values.yaml")).toEqual({
        sha: commit,
        text: "image: web@sha256:bbb\n",
      });
      return commit;
    });
    expect((await http.log(name, "main"))[0]).toMatchObject({
      sha,
      subject: "Over SSH",
      authorName: "Ferry",
    });
    // The key's content is nowhere in the workspace; its path is not in .git/config either.
    const repo = join(dir, "repos", (await readdir(join(dir, "repos")))[0]!);
    const config = await readFile(join(repo, ".git", "config"), "utf8");
    expect(config).not.toContain(sshd.clientKey.privateKeyFile);
    for (const line of await keyMaterial(sshd.clientKey.privateKeyFile)) expect(config).not.toContain(line);
  });

  it("keeps the key out of `ps` while a push waits on the server, which shows only its path", async () => {
    const { remote } = await newRepo({ "a.yaml": "a: 1\n" });
    let ps = "";
    await workspace().with(remote, async (wc) => {
      await wc.sync("main");
      await wc.writeFile("a.yaml", "a: 2\n");
      await wc.commit("Held push", BOT, BOT);
      const hold = sshd.hold();
      const push = wc.push("main");
      try {
        await hold.held;
        ps = await runOk("ps", ["-eo", "pid,args"]);
        for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
          ps += await readFile(`/proc/${pid}/cmdline`, "latin1").catch(() => "");
        }
      } finally {
        await hold.release();
      }
      expect(await push).toBe("pushed");
    });
    // Sampled while ssh ran: its command line names the key file and the pinned known_hosts.
    expect(ps).toContain(`-i ${sshd.clientKey.privateKeyFile}`);
    expect(ps).toContain(`UserKnownHostsFile=${sshd.knownHostsFile}`);
    for (const line of await keyMaterial(sshd.clientKey.privateKeyFile)) expect(ps).not.toContain(line);
  });

  it("reports a push behind someone else's as rejected", async () => {
    const { remote } = await newRepo({ "a.yaml": "a: 1\n" });
    const first = workspace();
    const second = workspace();
    await first.with(remote, async (a) => {
      await a.sync("main");
      await second.with(remote, async (b) => {
        await b.sync("main");
        await b.writeFile("a.yaml", "a: 2\n");
        await b.commit("Theirs", BOT, BOT);
        expect(await b.push("main")).toBe("pushed");
      });
      await a.writeFile("a.yaml", "a: 3\n");
      await a.commit("Ours", BOT, BOT);
      expect(await a.push("main")).toBe("rejected");
    });
  });

  it("refuses a server whose host key is not the pinned one, or not pinned at all: git_host_key", async () => {
    const { remote } = await newRepo();
    const other = await sshd.newKey("not-the-host");
    const wrongPin = join(tmp.path, "wrong_known_hosts");
    const [type, key] = other.publicKey.split(" ");
    await writeFile(wrongPin, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
    const empty = join(tmp.path, "empty_known_hosts");
    await writeFile(empty, "");
    for (const knownHostsFile of [wrongPin, empty, join(tmp.path, "no-such-file")]) {
      const err = await caught(
        workspace().with(
          {
            url: remote.url,
            auth: { kind: "ssh", privateKeyFile: sshd.clientKey.privateKeyFile, knownHostsFile },
          },
          (wc) => wc.sync("main"),
        ),
      );
      expect(err.reason, knownHostsFile).toBe("git_host_key");
      expect(err.message).not.toMatch(/@127\.0\.0\.1/);
    }
  });

  it("refuses a key the server does not authorise: git_auth_failed, with no key material in the error", async () => {
    const { remote } = await newRepo();
    const stranger = await sshd.newKey("stranger");
    const err = await caught(
      workspace().with(
        {
          url: remote.url,
          auth: { kind: "ssh", privateKeyFile: stranger.privateKeyFile, knownHostsFile: sshd.knownHostsFile },
        },
        (wc) => wc.sync("main"),
      ),
    );
    expect(err.reason).toBe("git_auth_failed");
    for (const line of [
      ...(await keyMaterial(stranger.privateKeyFile)),
      ...(await keyMaterial(sshd.clientKey.privateKeyFile)),
    ]) {
      expect(err.message).not.toContain(line);
    }
  });
});
