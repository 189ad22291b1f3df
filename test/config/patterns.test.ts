import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { anchoredRegExp } from "../../src/common/patterns.ts";
import { compileMatcher } from "../../src/identity/matchers.ts";
import { NO_STACK, runFerry } from "../support/cli.ts";

/** Patterns that close the wrapping group early, so one branch escapes the anchors. */
const ESCAPES = ["refs/heads/main)|(.*", "x)|.*|(?:y", "a\\", "[", "(?:a"];

/** Values a policy must never match whatever its author wrote. */
const ARBITRARY = [
  "refs/heads/attacker",
  "https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/x",
  "",
];

describe("an always-anchored pattern cannot escape its anchors", () => {
  it.each(ESCAPES)("%j is refused when compiled", (source) => {
    expect(() => anchoredRegExp(source)).toThrow(SyntaxError);
    expect(() => compileMatcher({ regex: source })).toThrow(SyntaxError);
  });

  it("a would-be escape that is a valid pattern by itself still matches the whole value only", () => {
    // Valid alone, so it is one disjunction: `^(?:(main)|(.*-rc))$`, never "anything".
    const re = anchoredRegExp("(main)|(.*-rc)");
    expect(re.test("main")).toBe(true);
    expect(re.test("v1-rc")).toBe(true);
    for (const value of ARBITRARY) expect(re.test(value)).toBe(false);
    expect(re.test("main-evil")).toBe(false);
    expect(re.test("evil-main")).toBe(false);
  });

  it("claim patterns and subject patterns read \\p{L} the same way (the u flag)", () => {
    expect(anchoredRegExp("\\p{L}+").test("Zoë")).toBe(true);
    expect(compileMatcher({ regex: "\\p{L}+" }).test("Zoë")).toBe(true);
    expect(compileMatcher({ regex: "\\p{L}+" }).test("p{L}")).toBe(false);
  });
});

describe("ferry config check refuses an escaping pattern, with its path", () => {
  it("a keyless subjectRegex and a claim regex: exit 2, each problem named by its path", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ferry-patterns-"));
    const file = path.join(dir, "ferry.yaml");
    writeFileSync(
      file,
      [
        "store: { sqlite: ./x.db }",
        "keys: { signing: ./k.pem }",
        "issuers: [{ name: gh, url: 'https://token.actions.githubusercontent.com', audience: ferry }]",
        "environments: [{ name: staging }]",
        "credentials:",
        "  - name: deploy",
        "    environment: staging",
        "    type: ferry-jwt",
        "    allow:",
        "      - issuer: gh",
        "        claims: { ref: { regex: 'refs/heads/main)|(.*' } }",
        "trust:",
        "  authorities:",
        "    - name: ci",
        "      keyless:",
        "        issuer: https://token.actions.githubusercontent.com",
        "        subjectRegex: 'https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main)|(.*'",
      ].join("\n"),
    );
    const run = await runFerry(["config", "check", file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/trust\.authorities\[0\]\.keyless\.subjectRegex: invalid regex/);
    expect(run.stderr).toMatch(/credentials\[0\]\.allow\[0\]\.claims\.ref\.regex: invalid regex/);
    expect(run.stderr).not.toMatch(NO_STACK);
  });
});
