import { generateKeyPairSync } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigFile, parseConfigText } from "../../src/config/load.ts";
import type { FerryConfig } from "../../src/config/schema.ts";
import { writeDemoImage } from "../../src/dev/image.ts";
import { loadDevIssuerKey } from "../../src/dev/issuer-key.ts";
import { demoProvenance } from "../../src/dev/seed.ts";
import { devIssuers, mintDevToken, personClaims, pipelineClaims } from "../../src/dev/token.ts";
import { OciLayout } from "../../src/registry/layout.ts";
import { startFerry } from "../../src/server.ts";
import { parseSigningKey } from "../../src/signing/keys.ts";
import { callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";

/** The embedded default's shape: dev issuers, one app whose environments are OCI layouts. */
const DEV_CONFIG = {
  issuers: [
    {
      name: "dev-ci",
      devKey: "./dev-issuer.pem",
      url: "https://dev-ci.ferry.invalid",
      audience: "ferry-dev",
      platform: "github",
    },
    {
      name: "dev-sso",
      devKey: "./dev-issuer.pem",
      url: "https://dev-sso.ferry.invalid",
      audience: "ferry-dev",
      kind: "human",
      groupsClaim: "groups",
      links: { github: "github_login" },
    },
  ],
  trust: { authorities: [{ name: "ferry", key: "ferry" }] },
  environments: [
    {
      name: "staging",
      require: { signature: { authorities: ["ferry"] }, provenance: { authorities: ["ferry"] } },
    },
  ],
  apps: [
    {
      name: "demo",
      images: { staging: "oci-layout:./layouts/staging" },
      pipelines: [{ issuer: "dev-ci", claims: { repository_id: "1", runner_environment: "github-hosted" } }],
    },
  ],
  verification: { readers: ["auditors"] },
};

describe("dev mode: dev issuers and OCI layouts as environments, over HTTP", () => {
  let ferry: TestFerry;
  // The config as loaded (the dev issuers with their resolved devKey), read by the token helpers.
  let config: FerryConfig;
  const issuer = (name: string) => devIssuers(config).find((d) => d.issuer.name === name)!.issuer;
  const key = () => loadDevIssuerKey(path.join(ferry.dir, "dev-issuer.pem"), "issuers[0].devKey").key;
  const pipelineToken = () =>
    mintDevToken(
      key(),
      issuer("dev-ci"),
      "repo:acme/demo:ref:refs/heads/main",
      pipelineClaims(config, "demo", issuer("dev-ci")),
    );
  const personToken = (who: string, groups: string[]) =>
    mintDevToken(key(), issuer("dev-sso"), who, personClaims(issuer("dev-sso"), who, groups));
  let image: string;

  beforeAll(async () => {
    ferry = await startTestFerry(DEV_CONFIG);
    config = loadConfigFile(path.join(ferry.dir, "ferry.yaml"), {}).config;
    const layout = await OciLayout.open(path.join(ferry.dir, "layouts/staging"), { create: true });
    const digest = await writeDemoImage(layout, "latest");
    image = `oci-layout:${path.join(ferry.dir, "layouts/staging")}@${digest}`;
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it("says at start that it accepts dev tokens, and generated the dev issuer key once for both issuers", () => {
    const warns = ferry.logs.filter((l) =>
      String(l.msg).startsWith("dev mode: accepting tokens of a dev issuer"),
    );
    expect(warns.map((w) => [w.issuer, w.level])).toEqual([
      ["dev-ci", "warn"],
      ["dev-sso", "warn"],
    ]);
    expect(new Set(warns.map((w) => w.keyId)).size).toBe(1);
    expect(ferry.logText()).not.toContain("PRIVATE KEY");
  });

  it("signs and verifies a digest in an oci-layout environment for the app's dev pipeline", async () => {
    const signed = await callApi(ferry, await pipelineToken(), "POST", "/v1/signatures", {
      image,
      attestations: [demoProvenance(image.split("@")[1]!)],
    });
    expect(signed.status, JSON.stringify(signed.json)).toBe(201);
    const verified = await callApi(ferry, await pipelineToken(), "POST", "/v1/verifications", {
      image,
      environment: "staging",
    });
    expect(verified.status, JSON.stringify(verified.json)).toBe(200);
    expect(verified.json.allowed).toBe(true);
    expect(
      (verified.json.checks as { name: string; passed: boolean }[]).map((c) => [c.name, c.passed]),
    ).toEqual([
      ["signature", true],
      ["provenance", true],
    ]);
  });

  it("gives people the groups they were minted with (a reader may verify, another may not)", async () => {
    const reader = await callApi(
      ferry,
      await personToken("carol", ["auditors"]),
      "POST",
      "/v1/verifications",
      {
        image,
        environment: "staging",
      },
    );
    expect(reader.status).toBe(200);
    const other = await callApi(
      ferry,
      await personToken("dave", ["developers"]),
      "POST",
      "/v1/verifications",
      {
        image,
        environment: "staging",
      },
    );
    expect(other.status).toBe(403);
  });

  it("spends a dev token like any other: the same token twice on a call that changes something is refused", async () => {
    const token = await pipelineToken();
    const body = { image, attestations: [] };
    expect([200, 201]).toContain((await callApi(ferry, token, "POST", "/v1/signatures", body)).status);
    const again = await callApi(ferry, token, "POST", "/v1/signatures", body);
    expect(again.status).toBe(401);
  });

  it("refuses a token with the dev issuer's iss signed by another key", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const forged = parseSigningKey(privateKey.export({ format: "pem", type: "pkcs8" }).toString(), "forged");
    const token = await mintDevToken(
      forged,
      issuer("dev-ci"),
      "repo:acme/demo:ref:refs/heads/main",
      pipelineClaims(config, "demo", issuer("dev-ci")),
    );
    const answer = await callApi(ferry, token, "POST", "/v1/verifications", {
      image,
      environment: "staging",
    });
    expect(answer.status).toBe(401);
  });

  it("opens no layout that apps[].images does not list", async () => {
    const answer = await callApi(ferry, await pipelineToken(), "POST", "/v1/verifications", {
      image: `oci-layout:/etc@sha256:${"a".repeat(64)}`,
      environment: "staging",
    });
    expect(answer.status).toBe(403);
    expect(answer.json.reason).toBe("repository_not_configured");
  });

  it("fails closed when a dev issuer reaches start-up outside dev mode (past the schema)", async () => {
    const loaded = parseConfigText(
      JSON.stringify({
        dev: true,
        store: { sqlite: ":memory:" },
        keys: { signing: "./signing.pem" },
        server: { listen: "127.0.0.1:0" },
        ...DEV_CONFIG,
      }),
      path.join(ferry.dir, "other.yaml"),
      {},
    );
    const tampered = { ...loaded, config: { ...loaded.config, dev: false } };
    await expect(startFerry(tampered)).rejects.toMatchObject({
      problems: [{ path: "issuers[0].devKey", message: expect.stringContaining("dev: true") }],
    });
  });
});
