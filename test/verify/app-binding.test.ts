import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";
import { copyArtifact } from "../../src/registry/copy.ts";
import type { VerificationReport } from "../../src/verify/report.ts";
import { githubClaims } from "../identity/fixtures.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

/**
 * The attack: app `api`'s pipeline has Ferry sign its image; the image (with Ferry's signatures)
 * is copied into app `web`'s repository. Ferry's key signs for every app, so the key alone says
 * nothing about which app an image belongs to: the signed repository must.
 */
const AUD = "https://ferry.test";
let registry: TestRegistry;
let github: OidcIssuer;
let ferry: TestFerry;
let client: RegistryClient;
let digest: string;

async function bearer(repositoryId: string): Promise<string> {
  return github.sign(githubClaims({ iss: github.url, aud: AUD }, { repository_id: repositoryId }));
}

/** Verifies as a pipeline of the app owning the repository (the route allows no one else). */
async function verify(image: string, environment: string): Promise<VerificationReport> {
  const pipeline = image.includes("/api@") ? "99" : "74";
  const res = await fetch(`${ferry.url}/v1/verifications`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await bearer(pipeline)}` },
    body: JSON.stringify({ image, environment }),
  });
  const report = (await res.json()) as VerificationReport;
  expect(res.status, JSON.stringify(report)).toBe(200);
  return report;
}

async function copy(from: string, to: string): Promise<void> {
  const repo = (name: string) => client.repository({ registry: registry.host, repository: name });
  await copyArtifact(repo(from), digest, repo(to));
}

beforeAll(async () => {
  [registry, github] = await Promise.all([startRegistry({ auth: "none" }), startOidcIssuer()]);
  client = new RegistryClient({ registries: [{ url: registry.url }] });
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-app-binding-"));
  const layout = await buildImageLayout(path.join(dir, "layout"), {});
  digest = await pushImage(layout.dir, registry, "staging/api:v1");
  const ferryOnly = { authorities: ["ferry"] };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ferry", key: "ferry" }] },
    environments: [
      { name: "staging", require: { signature: ferryOnly, sbom: ferryOnly } },
      { name: "production", after: "staging", require: { signature: ferryOnly } },
    ],
    apps: [
      {
        name: "web",
        images: { staging: `${registry.host}/staging/web`, production: `${registry.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
      {
        name: "api",
        images: { staging: `${registry.host}/staging/api`, production: `${registry.host}/prod/api` },
        pipelines: [{ issuer: "github", claims: { repository_id: "99" } }],
      },
    ],
  });
  const signed = await fetch(`${ferry.url}/v1/signatures`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await bearer("99")}` },
    body: JSON.stringify({
      image: `${registry.host}/staging/api@${digest}`,
      attestations: [
        {
          predicateType: "https://spdx.dev/Document",
          predicate: {
            spdxVersion: "SPDX-2.3",
            SPDXID: "SPDXRef-DOCUMENT",
            name: "api",
            dataLicense: "CC0-1.0",
            documentNamespace: "https://acme.example/spdx/api",
            creationInfo: { created: "2026-11-01T00:00:00Z", creators: ["Tool: syft"] },
          },
        },
      ],
    }),
  });
  expect(signed.status, await signed.clone().text()).toBe(201);
}, 120_000);

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop()]);
});

describe("Ferry's own signatures are bound to the app they were made for", () => {
  it("verify in the signed app's repository: allowed", async () => {
    const report = await verify(`${registry.host}/staging/api@${digest}`, "staging");
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.allowed).toBe(true);
  });

  it("copied into another app's repository: denied, naming the signed repository (not from the cache)", async () => {
    await copy("staging/api", "staging/web");
    const report = await verify(`${registry.host}/staging/web@${digest}`, "staging");
    expect(report.allowed).toBe(false);
    expect(report.cached).toBe(false);
    for (const name of ["signature", "sbom"]) {
      const check = report.checks.find((c) => c.name === name);
      expect(check?.passed).toBe(false);
      const reasons = check?.details?.candidates?.map((c) => c.reason) ?? [];
      expect(reasons.length).toBeGreaterThan(0);
      expect(new Set(reasons)).toEqual(new Set(["repository_not_in_app"]));
    }
  });

  it("copied on into that app's production repository: still denied", async () => {
    await copy("staging/web", "prod/web");
    const report = await verify(`${registry.host}/prod/web@${digest}`, "production");
    expect(report.allowed).toBe(false);
    expect(report.checks[0]?.details?.candidates?.[0]?.reason).toBe("repository_not_in_app");
  });

  it("promoted within its own app (staging/api → prod/api): allowed", async () => {
    await copy("staging/api", "prod/api");
    const report = await verify(`${registry.host}/prod/api@${digest}`, "production");
    expect(report.allowed).toBe(true);
  });
});
