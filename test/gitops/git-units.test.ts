// The pure parts of the git layer: remote URLs, paths, the environment and ssh command Ferry
// gives git, credential scrubbing and failure classification (on git's and ssh's own wording).

import { describe, expect, it } from "vitest";
import { classifyGitFailure, isMissingRemoteRef } from "../../src/gitops/git/classify.ts";
import { gitEnv, secretsOf, sshCommand } from "../../src/gitops/git/env.ts";
import { GitError } from "../../src/gitops/git/error.ts";
import { checkBranch, repoPath } from "../../src/gitops/git/paths.ts";
import { parseRemote } from "../../src/gitops/git/remote.ts";
import { gitDiagnostic, scrubCredentials } from "../../src/gitops/git/scrub.ts";
import { pushRefusal } from "../../src/gitops/git/working-copy.ts";

const TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

function refusal(fn: () => unknown): GitError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GitError);
    return err as GitError;
  }
  throw new Error("expected a GitError");
}

describe("parseRemote", () => {
  it("accepts https, ssh:// and scp-like remotes and names them without userinfo", () => {
    expect(parseRemote("https://git.example.com/acme/deploy.git")).toMatchObject({
      transport: "http",
      host: "git.example.com",
      display: "https://git.example.com/acme/deploy.git",
    });
    expect(parseRemote("https://git.example.com:8443/deploy.git").host).toBe("git.example.com:8443");
    expect(parseRemote("ssh://git@git.example.com:2222/acme/deploy.git")).toMatchObject({
      transport: "ssh",
      display: "ssh://git.example.com:2222/acme/deploy.git",
    });
    expect(parseRemote("git@github.com:acme/deploy.git")).toMatchObject({
      transport: "ssh",
      host: "github.com",
      display: "github.com:acme/deploy.git",
    });
    expect(parseRemote("http://127.0.0.1:8080/a.git", { kind: "token", token: TOKEN }).transport).toBe(
      "http",
    );
  });

  it("keys each URL's working copy by a hash, never by URL text", () => {
    const a = parseRemote("https://git.example.com/a.git");
    expect(a.key).toMatch(/^[0-9a-f]{24}$/);
    expect(parseRemote("https://git.example.com/a.git").key).toBe(a.key);
    expect(parseRemote("https://git.example.com/b.git").key).not.toBe(a.key);
  });

  it.each([
    [`https://x-access-token:${TOKEN}@git.example.com/a.git`, /password/],
    ["https://someone@git.example.com/a.git", /user name/],
    [`ssh://git:${TOKEN}@git.example.com/a.git`, /password/],
    ["ext::sh -c id", /spaces/],
    ["ext::id", /remote helper/],
    ["file:///srv/a.git", /scheme file:/],
    ["/srv/a.git", /neither/],
    ["--upload-pack=touch /tmp/x", /leading '-'/],
    ["git@host:-oProxyCommand=x", /starts with '-'/],
    ["https://git.example.com/a.git?x=1", /query/],
    ["https://git.example.com/a.git\nx", /control/],
    ["", /empty/],
  ])("refuses %s", (url, message) => {
    const err = refusal(() => parseRemote(url));
    expect(err.reason).toBe("git_failed");
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(TOKEN);
  });

  it("refuses a token over plain http to a non-loopback host, and auth of the wrong kind", () => {
    expect(
      refusal(() => parseRemote("http://git.example.com/a.git", { kind: "token", token: TOKEN })).message,
    ).toMatch(/plain http/);
    const ssh = { kind: "ssh", privateKeyFile: "/k", knownHostsFile: "/kh" } as const;
    expect(refusal(() => parseRemote("https://git.example.com/a.git", ssh)).message).toMatch(/ssh auth/);
    expect(refusal(() => parseRemote("git@h:a.git", { kind: "token", token: TOKEN })).message).toMatch(
      /token auth/,
    );
  });
});

describe("repoPath and checkBranch", () => {
  it("normalises relative paths", () => {
    expect(repoPath("./env//prod/values.yaml")).toBe("env/prod/values.yaml");
    expect(repoPath("env/prod/../stage/k.yaml")).toBe("env/stage/k.yaml");
    expect(repoPath("dir/")).toBe("dir");
  });

  it.each([
    "",
    "/etc/passwd",
    "..",
    "../x",
    "a/../../x",
    ".",
    ".git/config",
    "a/.git/hooks/post-checkout",
    ".GIT/HEAD",
    "a\\..\\b",
    "a\0b",
  ])("refuses %j", (path) => {
    expect(refusal(() => repoPath(path)).reason).toBe("git_failed");
  });

  it("accepts plain branch names and refuses options, ranges and lock names", () => {
    for (const ok of ["main", "release/1.2", "ferry/web/prod", "v1.x_y-z"]) expect(checkBranch(ok)).toBe(ok);
    for (const bad of [
      "-f",
      "a..b",
      "a/",
      "/a",
      "a//b",
      "x.lock",
      "a/.hidden",
      "a b",
      "a~1",
      "a^",
      "a:b",
      "HEAD@{1}",
      "",
    ]) {
      expect(refusal(() => checkBranch(bad)).reason, bad).toBe("git_failed");
    }
  });
});

describe("the environment and ssh command git runs with", () => {
  const remote = parseRemote("https://git.example.com/a.git");

  it("inherits nothing but PATH, pins HOME, LANG and the transports, and carries the token only in the environment", () => {
    const previous = process.env.GIT_PROXY_SSL_CERT;
    process.env.GIT_PROXY_SSL_CERT = "/leak";
    try {
      const env = gitEnv({
        remote,
        auth: { kind: "token", token: TOKEN },
        home: "/data/gitops/home",
        askpassFile: "/data/gitops/bin/askpass",
        timeoutMs: 30_000,
      });
      expect(env).toMatchObject({
        HOME: "/data/gitops/home",
        LANG: "C",
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_TERMINAL_PROMPT: "0",
        GIT_ALLOW_PROTOCOL: "http:https:ssh",
        GIT_ASKPASS: "/data/gitops/bin/askpass",
        FERRY_GIT_HOST: "git.example.com",
        FERRY_GIT_USERNAME: "x-access-token",
        FERRY_GIT_TOKEN: TOKEN,
      });
      expect(env.GIT_PROXY_SSL_CERT).toBeUndefined();
      const config: Record<string, string> = {};
      for (let i = 0; i < Number(env.GIT_CONFIG_COUNT); i++) {
        config[env[`GIT_CONFIG_KEY_${i}`]!] = env[`GIT_CONFIG_VALUE_${i}`]!;
      }
      expect(config).toMatchObject({ "core.hooksPath": "/dev/null", "credential.helper": "" });
      // The token is in exactly one variable, and nowhere a command line could show it.
      expect(
        Object.entries(env)
          .filter(([, v]) => v?.includes(TOKEN))
          .map(([k]) => k),
      ).toEqual(["FERRY_GIT_TOKEN"]);
    } finally {
      if (previous === undefined) delete process.env.GIT_PROXY_SSL_CERT;
      else process.env.GIT_PROXY_SSL_CERT = previous;
    }
  });

  it("gives no askpass answer without a token", () => {
    const env = gitEnv({ remote, auth: undefined, home: "/h", askpassFile: "/a", timeoutMs: 1000 });
    expect(env.FERRY_GIT_HOST).toBeUndefined();
    expect(env.FERRY_GIT_TOKEN).toBeUndefined();
  });

  it("builds an ssh command of paths and pinning options only, quoted for the shell", () => {
    const command = sshCommand(
      { kind: "ssh", privateKeyFile: "/keys/it's key", knownHostsFile: "/keys/known hosts" },
      30,
    );
    expect(command).toBe(
      "ssh -F none -i '/keys/it'\\''s key' -o IdentitiesOnly=yes -o IdentityAgent=none " +
        "-o UserKnownHostsFile='/keys/known hosts' -o GlobalKnownHostsFile=/dev/null " +
        "-o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o BatchMode=yes -o ConnectTimeout=30",
    );
    // Without ssh auth nothing is trusted: every host key is unknown.
    expect(sshCommand(undefined, 5)).toContain("UserKnownHostsFile=/dev/null");
  });

  it("lists the token and its Basic form as secrets to scrub", () => {
    expect(secretsOf({ kind: "token", token: TOKEN })).toEqual([TOKEN, `x-access-token:${TOKEN}`]);
    expect(secretsOf({ kind: "ssh", privateKeyFile: "/k", knownHostsFile: "/kh" })).toEqual([]);
    expect(secretsOf(undefined)).toEqual([]);
  });
});

describe("scrubCredentials", () => {
  it("removes known secrets in every encoding, userinfo, Authorization headers, forge tokens and private keys", () => {
    const basic = Buffer.from(`x-access-token:${TOKEN}`).toString("base64");
    const text = [
      `fatal: unable to access 'https://x-access-token:${TOKEN}@git.example.com/a.git/': 403`,
      `> Authorization: Basic ${basic}`,
      "authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig",
      `remote: token ${encodeURIComponent("s3cr3t/+=")} and glpat-abcdefghijklmnopqrst`,
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
      "ssh://git@host:22/a.git",
    ].join("\n");
    const out = scrubCredentials(text, [TOKEN, "s3cr3t/+="]);
    for (const secret of [
      TOKEN,
      basic,
      "eyJhbGciOiJSUzI1NiJ9",
      "glpat-",
      "b3BlbnNzaC1rZXktdjEAAAAA",
      "x-access-token",
      "s3cr3t",
      "git@",
    ]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain("https://git.example.com/a.git/");
    expect(out).toContain("ssh://host:22/a.git");
  });

  it("keeps the last meaningful lines of stderr, capped", () => {
    const stderr = `${"remote: Counting objects: 1\n".repeat(3)}hint: try again\nerror: one\nfatal: two\n`;
    expect(gitDiagnostic(stderr, [])).toBe("error: one; fatal: two");
    expect(gitDiagnostic(`fatal: ${"x".repeat(5000)}`, []).length).toBeLessThanOrEqual(601);
  });
});

describe("classifyGitFailure", () => {
  // The wording of git 2.39 and OpenSSH 9.2 (LANG=C), as the integration tests meet it.
  it.each([
    ["Host key verification failed.\nfatal: Could not read from remote repository.", "git_host_key"],
    [
      "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.",
      "git_host_key",
    ],
    ["@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@", "git_host_key"],
    [
      "root@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.",
      "git_auth_failed",
    ],
    ["fatal: Authentication failed for 'http://127.0.0.1:1/a.git/'", "git_auth_failed"],
    ["fatal: could not read Username for 'https://h': terminal prompts disabled", "git_auth_failed"],
    ["fatal: unable to access 'https://h/a.git/': The requested URL returned error: 403", "git_auth_failed"],
    ["remote: Permission to acme/deploy.git denied to ferry-bot.", "git_auth_failed"],
    [
      "fatal: unable to access 'http://127.0.0.1:9/a.git/': Failed to connect to 127.0.0.1 port 9",
      "git_unreachable",
    ],
    ["ssh: connect to host 127.0.0.1 port 22: Connection refused", "git_unreachable"],
    [
      "fatal: unable to access 'https://nowhere.invalid/a.git/': Could not resolve host: nowhere.invalid",
      "git_unreachable",
    ],
    ["fatal: unable to access 'https://h/a.git/': The requested URL returned error: 502", "git_unreachable"],
    ["fatal: unable to access 'https://h/a.git/': The requested URL returned error: 404", "git_failed"],
    ["fatal: '/x.git' does not appear to be a git repository", "git_failed"],
    ["error: file .git/objects/pack/p.pack is far too short to be a packfile", "git_failed"],
  ])("%s → %s", (stderr, reason) => {
    expect(classifyGitFailure(stderr)).toBe(reason);
  });

  it("tells a missing branch apart", () => {
    expect(isMissingRemoteRef("fatal: couldn't find remote ref refs/heads/release")).toBe(true);
    expect(isMissingRemoteRef("fatal: Authentication failed")).toBe(false);
  });
});

describe("pushRefusal", () => {
  it.each([
    ["[rejected] (non-fast-forward)", "rejected"],
    ["[rejected] (fetch first)", "rejected"],
    ["[remote rejected] (cannot lock ref 'refs/heads/main': is at 1111111 but expected 2222222)", "rejected"],
    ["[remote rejected] (pre-receive hook declined)", "refused"],
    ["[remote rejected] (protected branch hook declined)", "refused"],
  ])("reads %j as %s", (summary, expected) => {
    expect(pushRefusal(summary)).toBe(expected);
  });
});
