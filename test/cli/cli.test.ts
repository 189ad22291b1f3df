import { createPrivateKey, createPublicKey } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { NO_STACK, runFerry } from "../support/cli.ts";

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), "ferry-cli-"));
}

describe("ferry config check", () => {
  it("exits 0 on a valid file", async () => {
    const run = await runFerry([
      "config",
      "check",
      new URL("../../examples/ferry.dev.yaml", import.meta.url).pathname,
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ferry\.dev\.yaml: ok/);
  });

  it("prints every problem with its path and exits 2, without a stack trace", async () => {
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(
      file,
      [
        "store: { sqlite: ./x.db }",
        "keys: { signing: k.pem }",
        "environments:",
        "  - { name: staging }",
        "  - { name: production, approvals: { count: -1, groups: [rm] } }",
        "issuers: [{ name: gh, url: ftp://x, audience: a }]",
        'registries: [{ url: "${REG_URL}" }]',
      ].join("\n"),
    );
    const run = await runFerry(["config", "check", file]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`invalid config ${file}`);
    expect(run.stderr).toMatch(
      /environments\[1\]\.approvals\.count: expected a positive integer, got number -1/,
    );
    expect(run.stderr).toMatch(/issuers\[0\]\.url: expected an http\(s\) URL/);
    expect(run.stderr).toMatch(/registries\[0\]\.url: environment variable REG_URL is not set/);
    expect(run.stderr).not.toMatch(NO_STACK);
  });

  it("checks the files the config names: keys and trusted roots, each problem with its path", async () => {
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(path.join(dir, "not-a-key.pub"), "hello\n");
    writeFileSync(
      file,
      [
        "store: { sqlite: ./x.db }",
        "keys: { signing: ./missing-signing.pem }",
        "trust:",
        "  trustedRoot: ./missing-root.json",
        "  authorities:",
        "    - { name: ci, key: ./missing.pub }",
        "    - { name: other, key: ./not-a-key.pub }",
        "    - { name: ferry, key: ferry }",
      ].join("\n"),
    );
    const run = await runFerry(["config", "check", file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /keys\.signing: .*missing-signing\.pem does not exist; create it with `ferry keys generate/,
    );
    expect(run.stderr).toMatch(/trust\.authorities\[0\]\.key: cannot read .*missing\.pub \(ENOENT\)/);
    expect(run.stderr).toMatch(/trust\.authorities\[1\]\.key: .*not-a-key\.pub: not a PEM public key/);
    expect(run.stderr).toMatch(
      /trust\.trustedRoot: trusted root not loaded \(.*missing-root\.json: ENOENT\)/,
    );
    expect(run.stderr).not.toMatch(NO_STACK);
  });

  it("exits 2 on a missing file and on unknown commands", async () => {
    const missing = await runFerry(["config", "check", "/nonexistent/ferry.yaml"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/file not found/);
    const unknown = await runFerry(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const help = await runFerry(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/serve/);
  });
});

describe("ferry keys generate", () => {
  it("writes an ECDSA P-256 PKCS#8 PEM with mode 0600 and refuses to overwrite without --force", async () => {
    const file = path.join(tempDir(), "keys", "signing.pem");
    const run = await runFerry(["keys", "generate", "--out", file]);
    expect(run.code).toBe(0);
    const pem = readFileSync(file, "utf8");
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe("ec");
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(run.stdout).toMatch(/key id sha256:[0-9a-f]{64}/);
    expect(run.stdout).toContain("BEGIN PUBLIC KEY");
    expect(run.stdout).not.toContain("PRIVATE KEY");

    const again = await runFerry(["keys", "generate", "--out", file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect(readFileSync(file, "utf8")).toBe(pem);
    expect((await runFerry(["keys", "generate", "--out", file, "--force"])).code).toBe(0);
    expect(readFileSync(file, "utf8")).not.toBe(pem);
  });

  it("prints a key to stdout without --out", async () => {
    const run = await runFerry(["keys", "generate"]);
    expect(run.code).toBe(0);
    expect(createPrivateKey(run.stdout).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });
});

describe("ferry serve", () => {
  function writeConfig(dev: boolean): { dir: string; file: string } {
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(
      file,
      `dev: ${dev}\nserver: { listen: "127.0.0.1:0" }\nstore: { sqlite: ./data/ferry.db }\nkeys: { signing: ./data/signing.pem }\n`,
    );
    return { dir, file };
  }

  it("refuses to start without a signing key outside dev mode, saying how to make one", async () => {
    const { dir, file } = writeConfig(false);
    const run = await runFerry(["serve", "--config", file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /keys\.signing: .*signing\.pem does not exist; create it with `ferry keys generate --out/,
    );
    expect(existsSync(path.join(dir, "data", "signing.pem"))).toBe(false);
    expect(run.stderr).not.toMatch(NO_STACK);
  });

  it("in dev mode generates the key, serves, prints what to try, and drains and exits 0 on SIGTERM", async () => {
    const { dir, file } = writeConfig(true);
    let url = "";
    let health = 0;
    const run = await runFerry(["serve", "--config", file], {
      onStart: (child) => {
        let seen = "";
        child.stderr?.on("data", async (d) => {
          seen += d;
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen);
          if (match && !url) {
            url = match[1]!;
            health = (await fetch(`${url}/healthz`)).status;
            child.kill("SIGTERM");
          }
        });
      },
    });
    expect(url).not.toBe("");
    expect(health).toBe(200);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`curl ${url}/healthz`);
    expect(run.stderr).toMatch(/SIGTERM received, draining/);
    expect(run.stdout).toMatch(/"msg":"ferry stopped"/);
    expect(run.stdout).toMatch(/dev mode: generated a new signing key/);
    expect(existsSync(path.join(dir, "data", "signing.pem"))).toBe(true);
  });
});

describe("ferry keys export", () => {
  it("prints the configured key's public half, and refuses when the key does not exist", async () => {
    const dir = tempDir();
    const keyFile = path.join(dir, "signing.pem");
    expect((await runFerry(["keys", "generate", "--out", keyFile])).code).toBe(0);
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(file, "dev: true\nstore: { sqlite: ./x.db }\nkeys: { signing: ./signing.pem }\n");
    const run = await runFerry(["keys", "export", "--config", file]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    expect(createPublicKey(run.stdout).export({ format: "jwk" })).toEqual(
      createPublicKey(createPrivateKey(readFileSync(keyFile, "utf8"))).export({ format: "jwk" }),
    );
    writeFileSync(file, "dev: true\nstore: { sqlite: ./x.db }\nkeys: { signing: ./missing.pem }\n");
    const missing = await runFerry(["keys", "export", "--config", file]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.pem does not exist/);
    expect(existsSync(path.join(dir, "missing.pem"))).toBe(false);
  });
});
