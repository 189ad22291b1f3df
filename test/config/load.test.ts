import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema, configMarkdown } from "../../src/config/docs.ts";
import { parseDuration } from "../../src/config/duration.ts";
import { ConfigError, loadConfigFile, parseConfigText } from "../../src/config/load.ts";

const root = new URL("../../", import.meta.url);

function problemsOf(text: string, env: Record<string, string> = {}): { path: string; message: string }[] {
  try {
    parseConfigText(text, "/etc/ferry/ferry.yaml", env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected the config to be refused");
}

const MINIMAL = "store: { sqlite: ./data/ferry.db }\nkeys: { signing: ./keys/signing.pem }\n";

describe("durations", () => {
  it.each([
    ["90s", 90_000],
    ["15m", 900_000],
    ["1h", 3_600_000],
    ["1.5h", 5_400_000],
    ["7d", 604_800_000],
    ["250ms", 250],
  ])("parses %s", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["10", "1w", "m", "-5m", "1h30m", ""])("refuses %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("loading ferry.yaml", () => {
  it("fills defaults, resolves relative paths against the file's folder, derives publicUrl", () => {
    const { config, baseDir } = parseConfigText(MINIMAL, "/etc/ferry/ferry.yaml", {});
    expect(baseDir).toBe("/etc/ferry");
    expect(config.store).toEqual({ sqlite: "/etc/ferry/data/ferry.db" });
    expect(config.keys.signing).toBe("/etc/ferry/keys/signing.pem");
    expect(config.server).toMatchObject({
      listen: "127.0.0.1:8080",
      publicUrl: "http://127.0.0.1:8080",
      bodyLimit: 1_048_576,
    });
    expect(config.server.shutdownGrace).toBe(10_000);
    expect(config.dev).toBe(false);
  });

  it("accepts the full example and the dev default", () => {
    const full = loadConfigFile(new URL("examples/ferry.example.yaml", root).pathname, {
      REG_USER: "u",
      REG_PASS: "p",
      FERRY_DATABASE_URL: "postgres://ferry@127.0.0.1:5432/ferry",
    });
    expect(full.config.environments.map((e) => e.name)).toEqual(["staging", "production"]);
    expect(full.config.environments[1]!.approvals).toEqual({
      count: 2,
      groups: ["release-managers"],
      expiresAfter: 86_400_000,
      separationOfDuties: { requireLinkedIdentity: true },
    });
    expect(full.config.issuers[0]!.maxTokenAge).toBe(600_000);
    expect(full.config.trust.authorities.find((a) => a.name === "ci-key")!.key).toBe(
      new URL("examples/keys/cosign.pub", root).pathname,
    );
    expect(full.config.trust.authorities.find((a) => a.name === "ferry")!.key).toBe("ferry");

    const dev = loadConfigFile(new URL("examples/ferry.dev.yaml", root).pathname, {});
    expect(dev.config.dev).toBe(true);
    expect(dev.config.store).toEqual({ sqlite: new URL("data/ferry.db", root).pathname });
  });

  it("substitutes ${VAR} in values, with defaults and $$ escapes, after YAML parsing", () => {
    const text = `${MINIMAL}registries:\n  - url: "\${REG_URL}"\n    auth: { username: "\${REG_USER:-anon}", password: "a$$b\${REG_PASS}" }\n`;
    const { config } = parseConfigText(text, "/x/ferry.yaml", {
      REG_URL: "http://127.0.0.1:5000",
      REG_PASS: "p: [1]",
    });
    expect(config.registries[0]).toEqual({
      url: "http://127.0.0.1:5000",
      auth: { username: "anon", password: "a$bp: [1]" },
    });
  });

  it("names a missing environment variable and where it was used", () => {
    expect(problemsOf(`store: { postgres: "\${FERRY_DATABASE_URL}" }\nkeys: { signing: k.pem }\n`)).toEqual([
      {
        path: "store.postgres",
        message: expect.stringContaining("environment variable FERRY_DATABASE_URL is not set"),
      },
    ]);
  });

  it("lists every problem with its path and what was expected", () => {
    const text = `
server: { listen: "8080" }
store: { sqlite: ./ferry.db }
keys: { signing: k.pem }
issuers:
  - { name: github, url: "not a url", audience: x, maxTokenAge: 10 }
environments:
  - name: staging
  - name: production
    after: qa
    approvals: { count: two, groups: [] }
apps:
  - name: web
    images: { prod: r/web }
    pipelines: [{ issuer: gitlab }]
credentials:
  - { name: deploy, environment: staging, type: aws-sts, allow: [{ issuer: github }], colour: blue }
`;
    const problems = problemsOf(text);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    expect(byPath["server.listen"]).toMatch(/host:port/);
    expect(byPath["issuers[0].url"]).toMatch(/URL/);
    expect(byPath["issuers[0].maxTokenAge"]).toMatch(/expected a string, got number 10/);
    expect(byPath["environments[1].approvals.count"]).toBe(
      'expected a positive integer, got the string "two"',
    );
    expect(byPath["environments[1].approvals.groups"]).toMatch(/at least 1/);
    expect(byPath.credentials?.[0] ?? byPath["credentials[0]"]).toMatch(/unknown key "colour"/);
    expect(problems.length).toBeGreaterThanOrEqual(6);
  });

  it("checks cross references once the shape is right", () => {
    const text = `${MINIMAL}
environments:
  - { name: staging }
  - { name: production, after: qa, approvals: { count: 0, groups: [x] } }
`;
    expect(problemsOf(text)).toEqual(
      expect.arrayContaining([
        { path: "environments[1].approvals.count", message: "expected a positive integer, got number 0" },
      ]),
    );
    const refs = `${MINIMAL}
environments: [{ name: staging }, { name: staging }, { name: production, after: qa }]
apps: [{ name: web, images: { prod: r/web }, pipelines: [{ issuer: gitlab }] }]
`;
    const problems = problemsOf(refs);
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: "environments[1].name", message: expect.stringContaining('duplicate name "staging"') },
        { path: "environments[2].after", message: 'unknown environment "qa" (known: staging, production)' },
        { path: "apps[0].images.prod", message: expect.stringContaining('unknown environment "prod"') },
        { path: "apps[0].pipelines[0].issuer", message: 'unknown issuer "gitlab" (known: none are defined)' },
      ]),
    );
  });

  it("requires exactly one store engine and reports YAML syntax errors with their position", () => {
    expect(problemsOf("store: { sqlite: a, postgres: b }\nkeys: { signing: k }\n")[0]!.path).toBe("store");
    const yamlProblems = problemsOf("store: { sqlite: a\nkeys: [\n");
    expect(yamlProblems[0]!.path).toMatch(/^line \d+, column \d+$/);
    expect(problemsOf("- a\n- b\n")).toEqual([
      { path: "", message: "expected a YAML mapping at the top level" },
    ]);
    expect(problemsOf("store: {sqlite: a}\nstore: {sqlite: b}\nkeys: {signing: k}\n")[0]!.message).toMatch(
      /YAML/,
    );
  });

  it("reports an invalid keyless subjectRegex with its path", () => {
    const text = `${MINIMAL}trust:\n  authorities:\n    - { name: rel, keyless: { issuer: "https://i", subjectRegex: "https://x/(" } }\n`;
    expect(problemsOf(text)).toEqual([
      {
        path: "trust.authorities[0].keyless.subjectRegex",
        message: expect.stringMatching(/^invalid regex: .*Unterminated group/),
      },
    ]);
  });

  it("says how to fix a missing file", () => {
    expect(() => loadConfigFile("/nonexistent/ferry.yaml")).toThrow(/file not found \(pass --config/);
  });

  it("keeps docs/config.md and docs/config.schema.json in step with the schema", () => {
    const schemaFile = readFileSync(new URL("docs/config.schema.json", root), "utf8");
    const markdown = readFileSync(new URL("docs/config.md", root), "utf8");
    const hint = "stale: run `npm run gen:config-docs`";
    expect(schemaFile, hint).toBe(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    expect(markdown, hint).toBe(configMarkdown());
    for (const option of [
      "`environments[].approvals.count`",
      "`issuers[].maxTokenAge`",
      "`store.postgres`",
    ]) {
      expect(markdown).toContain(option);
    }
  });

  it("reads files from disk", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ferry-config-"));
    writeFileSync(path.join(dir, "ferry.yaml"), MINIMAL);
    expect(loadConfigFile(path.join(dir, "ferry.yaml"), {}).config.keys.signing).toBe(
      path.join(dir, "keys/signing.pem"),
    );
  });
});
