import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { DEV_TOKEN_TTL_SECONDS } from "../../src/dev/token.ts";
import { runFerryInProcess } from "../support/cli.ts";

const CONFIG = `dev: true
store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
issuers:
  - { name: dev-ci, devKey: ./dev.pem, url: "https://dev-ci.ferry.invalid", audience: ferry-dev, platform: github }
  - { name: dev-sso, devKey: ./dev.pem, url: "https://dev-sso.ferry.invalid", audience: ferry-dev, kind: human, groupsClaim: groups, links: { github: github_login } }
environments: [{ name: staging }]
apps:
  - name: demo
    images: { staging: "oci-layout:./layouts/staging" }
    pipelines: [{ issuer: dev-ci, claims: { repository_id: "1", event_name: [push, workflow_dispatch], "x.y": deep } }]
`;

function configFile(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-dev-cli-"));
  const file = path.join(dir, "ferry.yaml");
  writeFileSync(file, text);
  return file;
}

describe("ferry dev token", () => {
  it("mints a pipeline token with the claims the app's pipelines rule pins, short-lived and unique", async () => {
    const file = configFile(CONFIG);
    const first = await runFerryInProcess(["dev", "token", "--pipeline", "--app", "demo", "--config", file]);
    const second = await runFerryInProcess(["dev", "token", "--pipeline", "--app", "demo", "--config", file]);
    expect([first.code, first.err]).toEqual([0, ""]);
    const claims = decodeJwt(first.out.trim());
    expect(decodeProtectedHeader(first.out.trim()).alg).toBe("ES256");
    expect(claims).toMatchObject({
      iss: "https://dev-ci.ferry.invalid",
      aud: "ferry-dev",
      repository_id: "1",
      event_name: "push",
      x: { y: "deep" },
      actor: "dev-ci",
    });
    expect(claims.exp! - claims.iat!).toBe(DEV_TOKEN_TTL_SECONDS);
    expect(decodeJwt(second.out.trim()).jti).not.toBe(claims.jti);
  });

  it("mints a person's token with groups and the link claim", async () => {
    const file = configFile(CONFIG);
    const run = await runFerryInProcess([
      "dev",
      "token",
      "--person",
      "alice",
      "--groups",
      "release-managers,ops",
      "--config",
      file,
    ]);
    expect(run.code).toBe(0);
    expect(decodeJwt(run.out.trim())).toMatchObject({
      iss: "https://dev-sso.ferry.invalid",
      sub: "alice",
      groups: ["release-managers", "ops"],
      github_login: "alice",
    });
  });

  it("refuses a config without dev: true, and says what to pass", async () => {
    const notDev = configFile("store: { sqlite: ./ferry.db }\nkeys: { signing: ./signing.pem }\n");
    const refused = await runFerryInProcess(["dev", "token", "--person", "alice", "--config", notDev]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/not a dev config/);
    const both = await runFerryInProcess(["dev", "token", "--config", configFile(CONFIG)]);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/either --pipeline --app NAME or --person NAME/);
  });
});
