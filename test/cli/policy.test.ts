import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { runFerryInProcess } from "../support/cli.ts";

const ISS = "https://token.actions.githubusercontent.com";

function workspace() {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-policy-"));
  const config = path.join(dir, "ferry.yaml");
  writeFileSync(
    config,
    `
store: { sqlite: ./ferry.db }
keys: { signing: ./k.pem }
issuers:
  - { name: github, url: "${ISS}", audience: https://ferry.example.com }
environments: [{ name: staging }, { name: production, after: staging }]
credentials:
  - name: deploy-production
    environment: production
    type: ferry-jwt
    allow:
      - issuer: github
        claims:
          repository_id: "74"
          ref: refs/heads/main
          event_name: [push, workflow_dispatch]
          runner_environment: github-hosted
      - { issuer: github, claims: { repository: acme/web, environment: production } }
`,
  );
  const claims = (name: string, value: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
    return file;
  };
  return { dir, config, claims };
}

/** `ferry policy explain` of the claims in `claims` against `credential` in `config`. */
function explain(config: string, claims: string, credential = "deploy-production"): string[] {
  return ["policy", "explain", "--config", config, "--credential", credential, "--claims", claims];
}

describe("ferry policy explain", () => {
  it("prints the matching rule and exits 0 when allowed", async () => {
    const ws = workspace();
    const file = ws.claims("ok.json", githubClaims({ iss: ISS, aud: "https://ferry.example.com" }));
    const run = await runFerryInProcess(explain(ws.config, file));
    expect(run.code).toBe(0);
    expect(run.out).toContain(
      "credential deploy-production (ferry-jwt, environment production); claims from issuer github (github)",
    );
    expect(run.out).toContain("rule 1 (issuer github): matched");
    expect(run.out).toMatch(/allowed by rule 1\n$/);
    // Rule 2 pins no *_id claim and says nothing about runner_environment.
    expect(run.err).toMatch(/warning: credentials\[0\]\.allow\[1\]: pins no immutable/);
  });

  it("takes a whole JWT as --claims, decodes its payload and says the signature was not checked", async () => {
    const ws = workspace();
    const payload = githubClaims({ iss: ISS, aud: "https://ferry.example.com" });
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const jwt = `${b64({ alg: "RS256", kid: "k1" })}.${b64(payload)}.${Buffer.from("not a signature").toString("base64url")}`;
    const run = await runFerryInProcess(explain(ws.config, ws.claims("token.jwt", `${jwt}\n`)));
    expect(run.code).toBe(0);
    expect(run.err).toContain("note: read the claims from the JWT's payload; its signature was not checked");
    expect(run.out).toMatch(/allowed by rule 1\n$/);
    const bad = await runFerryInProcess(
      explain(ws.config, ws.claims("bad.jwt", `${b64({ alg: "RS256" })}.bm90IGpzb24.c2ln`)),
    );
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("a JWT whose payload is not JSON");
  });

  it("prints, per rule, each claim that failed and exits 1 when denied", async () => {
    const ws = workspace();
    const file = ws.claims(
      "pr.json",
      githubClaims({ iss: ISS, aud: "x" }, { event_name: "pull_request", ref: "refs/pull/7/merge" }),
    );
    const run = await runFerryInProcess(explain(ws.config, file));
    expect(run.code).toBe(1);
    expect(run.out).toContain('  FAIL ref = "refs/pull/7/merge" does not match "refs/heads/main"');
    expect(run.out).toContain(
      '  FAIL event_name = "pull_request" does not match one of ["push","workflow_dispatch"]',
    );
    expect(run.out).toContain('  ok   repository_id = "74" matches "74"');
    expect(run.out).toContain("rule 2 (issuer github): no match");
    expect(run.out).toContain('  FAIL environment = missing does not match "production"');
    expect(run.out).toMatch(/denied: no rule matched\n$/);
  });

  it("an unregistered issuer and claims of the wrong type are denials (1)", async () => {
    const ws = workspace();
    const stranger = ws.claims("s.json", githubClaims({ iss: `${ISS}/`, aud: "x" }));
    const a = await runFerryInProcess(explain(ws.config, stranger));
    expect(a.code).toBe(1);
    expect(a.out).toMatch(/is not a registered issuer/);
    const typed = ws.claims("t.json", githubClaims({ iss: ISS, aud: "x" }, { repository_id: 74 }));
    const b = await runFerryInProcess(explain(ws.config, typed));
    expect(b.code).toBe(1);
    expect(b.out).toMatch(/not valid github claims: repository_id/);
  });

  it("usage and operational errors exit 2 with one line and no stack", async () => {
    const ws = workspace();
    const ok = ws.claims("ok.json", githubClaims({ iss: ISS, aud: "x" }));
    const cases = [
      explain(ws.config, ok, "nope"),
      explain(ws.config, ws.claims("bad.json", "{")),
      explain(ws.config, ws.claims("list.json", [1])),
      explain(ws.config, path.join(ws.dir, "none.json")),
      explain(path.join(ws.dir, "missing.yaml"), ok, "x"),
      ["policy", "explain", "--config", ws.config, "--claims", ok],
    ];
    for (const args of cases) {
      const run = await runFerryInProcess(args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.err).not.toMatch(/^\s+at /m);
    }
  });
});

describe("ferry policy lint", () => {
  it("lists the risky policies", async () => {
    const ws = workspace();
    const run = await runFerryInProcess(["policy", "lint", "--config", ws.config]);
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/credentials\[0\]\.allow\[1\]: pins no immutable/);
    expect(run.out).toMatch(
      /credentials\[0\]\.allow\[1\]: allows pull_request_target, workflow_run, issue_comment runs/,
    );
    expect(run.out).toMatch(/ferry\.yaml: 3 warning\(s\)\n$/);
  });
});
