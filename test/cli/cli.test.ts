import { createPrivateKey, createPublicKey } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { generateSigningKeyPem } from "../../src/signing/keys.ts";
import { type FerryRun, NO_STACK, runFerry } from "../support/cli.ts";

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

  it("lists unset ${VAR}s and missing files in the same run (files that do not depend on a variable)", async () => {
    const run = await runFerry([
      "config",
      "check",
      new URL("../../examples/ferry.example.yaml", import.meta.url).pathname,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("store.postgres: environment variable FERRY_DATABASE_URL is not set");
    expect(run.stderr).toContain("registries[0].auth.password: environment variable REG_PASS is not set");
    expect(run.stderr).toMatch(/keys\.signing: \S+signing\.pem does not exist/);
    expect(run.stderr).toMatch(/trust\.authorities\[1\]\.key: cannot read \S+cosign\.pub \(ENOENT\)/);
    // A path that comes from an unset variable is reported once, as the variable.
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(file, ["store: { sqlite: ./x.db }", 'keys: { signing: "${KEY_FILE}" }'].join("\n"));
    const one = await runFerry(["config", "check", file]);
    expect(one.code).toBe(2);
    expect(one.stderr.match(/keys\.signing/g)).toHaveLength(1);
    expect(one.stderr).toContain("KEY_FILE is not set");
    expect(one.stderr).not.toMatch(NO_STACK);
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

describe("start-up failures", () => {
  // Each prints the same way through `serve` and `config check`: the config file, then each
  // problem under its config path; exit 2, no stack trace.
  function setUp(lines: string[]): { dir: string; file: string } {
    const dir = tempDir();
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(path.join(dir, "signing.pem"), generateSigningKeyPem());
    writeFileSync(path.join(dir, "not-a-key.pem"), "hello\n");
    writeFileSync(path.join(dir, "not-a-root.json"), '{"mediaType": "text/plain"}\n');
    writeFileSync(
      file,
      [
        'server: { listen: "127.0.0.1:0" }',
        "store: { sqlite: ./ferry.db }",
        "keys: { signing: ./signing.pem }",
        ...lines,
      ].join("\n"),
    );
    return { dir, file };
  }

  function expectStartupFailure(run: FerryRun, file: string, problem: RegExp): void {
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`^ferry: invalid config ${escapeRegExp(file)}\\n`));
    expect(run.stderr).toMatch(problem);
    expect(run.stderr).not.toMatch(NO_STACK);
  }

  it("a signing key file that is not a key", async () => {
    const { file } = setUp([]);
    writeFileSync(file, readFileSync(file, "utf8").replace("./signing.pem", "./not-a-key.pem"));
    const problem = /\n {2}keys\.signing: .*not-a-key\.pem: not a PEM private key/;
    expectStartupFailure(await runFerry(["serve", "--config", file]), file, problem);
    expectStartupFailure(await runFerry(["config", "check", file]), file, problem);
  });

  it("an authority key that is not a public key", async () => {
    const { file } = setUp(["trust:", "  authorities:", "    - { name: ci, key: ./not-a-key.pem }"]);
    const problem = /\n {2}trust\.authorities\[0\]\.key: .*not-a-key\.pem: not a PEM public key/;
    expectStartupFailure(await runFerry(["serve", "--config", file]), file, problem);
    expectStartupFailure(await runFerry(["config", "check", file]), file, problem);
  });

  it("a previous key that is not a key", async () => {
    const { file } = setUp([]);
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace("./signing.pem }", "./signing.pem, previous: [./not-a-key.pem] }"),
    );
    const problem = /\n {2}keys\.previous\[0\]: .*not-a-key\.pem.*: not a PEM public or private key/;
    expectStartupFailure(await runFerry(["serve", "--config", file]), file, problem);
    expectStartupFailure(await runFerry(["config", "check", file]), file, problem);
  });

  it("a policy that does not compile", async () => {
    const { file } = setUp([
      "issuers: [{ name: github, url: https://token.actions.githubusercontent.com, audience: ferry }]",
      "environments: [{ name: staging }]",
      "credentials:",
      "  - name: deploy",
      "    environment: staging",
      "    type: ferry-jwt",
      '    allow: [{ issuer: github, claims: { ref: { regex: "refs/heads/(main" } } }]',
    ]);
    const problem = /\n {2}credentials\[0\]\.allow\[0\]\.claims\.ref\.regex: invalid regex/;
    expectStartupFailure(await runFerry(["serve", "--config", file]), file, problem);
    expectStartupFailure(await runFerry(["config", "check", file]), file, problem);
  });

  it("a trusted root that is not one (config check; serve starts and keyless verification denies)", async () => {
    const { file } = setUp(["trust: { trustedRoot: ./not-a-root.json }"]);
    expectStartupFailure(
      await runFerry(["config", "check", file]),
      file,
      /\n {2}trust\.trustedRoot: trusted root not loaded \(.*not-a-root\.json/,
    );
  });

  it("an address that cannot be listened on", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const { file } = setUp([]);
      writeFileSync(file, readFileSync(file, "utf8").replace("127.0.0.1:0", `127.0.0.1:${port}`));
      expectStartupFailure(
        await runFerry(["serve", "--config", file]),
        file,
        new RegExp(`\\n {2}server\\.listen: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
