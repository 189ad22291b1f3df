import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../src/registry/client.ts";
import { copyArtifact } from "../../src/registry/copy.ts";
import { githubClaims } from "../identity/fixtures.ts";
import { sign as cosignSign, verify as cosignVerify, generateKeyPair, runCosign } from "../support/cosign.ts";
import { startTestFerry, type TestFerry } from "../support/ferry.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { MANIFEST_ACCEPT, registryFetch, startRegistry, type TestRegistry } from "../support/registry.ts";

const AUD = "https://ferry.test";

let registry: TestRegistry;
let github: OidcIssuer;
let ferry: TestFerry;
let dir: string;
let ferryPub: string;
let other: { privateKeyPath: string; publicKeyPath: string };
let repo: string;
let digest: string;
let image: string;

const spdx = {
  spdxVersion: "SPDX-2.3",
  SPDXID: "SPDXRef-DOCUMENT",
  name: "web",
  dataLicense: "CC0-1.0",
  documentNamespace: "https://acme.example/spdx/web",
  creationInfo: { created: "2026-11-01T00:00:00Z", creators: ["Tool: syft"] },
  packages: [{ SPDXID: "SPDXRef-web", name: "web", downloadLocation: "NOASSERTION" }],
};
const provenance = {
  buildDefinition: {
    buildType: "https://actions.github.io/buildtypes/workflow/v1",
    externalParameters: {
      workflow: {
        ref: "refs/heads/main",
        repository: "https://github.com/acme/web",
        path: ".github/workflows/release.yml",
      },
    },
  },
  runDetails: {
    builder: { id: "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main" },
  },
};
const SPDX = "https://spdx.dev/Document";
const SLSA1 = "https://slsa.dev/provenance/v1";

async function token(over: Record<string, unknown> = {}): Promise<string> {
  return github.sign(githubClaims({ iss: github.url, aud: AUD }, over));
}

async function post(body: unknown, bearer?: string): Promise<Response> {
  return fetch(`${ferry.url}/v1/signatures`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
}

async function manifestOf(reference: string): Promise<{ layers?: unknown[]; manifests?: unknown[] }> {
  const res = await registryFetch(registry, `/v2/staging/web/manifests/${reference}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { layers?: unknown[]; manifests?: unknown[] };
}

beforeAll(async () => {
  [registry, github] = await Promise.all([startRegistry({ auth: "none" }), startOidcIssuer()]);
  dir = mkdtempSync(path.join(tmpdir(), "ferry-signing-"));
  repo = `${registry.host}/staging/web`;
  const layout = await buildImageLayout(path.join(dir, "layout"), {});
  digest = await pushImage(layout.dir, registry, "staging/web:v1");
  image = `${repo}@${digest}`;
  // Another signer was there first: its signature must survive Ferry's.
  other = await generateKeyPair(path.join(dir, "other"));
  expect((await cosignSign(image, other.privateKeyPath)).code).toBe(0);

  const authority = { authorities: ["ferry"] };
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ferry", key: "ferry" }] },
    environments: [
      { name: "staging", require: { signature: authority, sbom: authority, provenance: authority } },
      {
        name: "production",
        after: "staging",
        require: { signature: authority, sbom: authority, provenance: authority },
      },
    ],
    apps: [
      {
        name: "web",
        images: { staging: repo, production: `${registry.host}/prod/web` },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
      {
        name: "api",
        images: { staging: `${registry.host}/staging/api` },
        pipelines: [{ issuer: "github", claims: { repository_id: "99" } }],
      },
    ],
  });
  ferryPub = path.join(dir, "ferry.pub");
  writeFileSync(ferryPub, ferry.signingKey.publicKeyPem);
});

afterAll(async () => {
  await ferry?.close();
  await Promise.all([registry?.stop(), github?.stop()]);
});

describe("POST /v1/signatures", () => {
  let first: Record<string, unknown>;
  /** The full request: sign `image` and attest its SPDX SBOM and SLSA v1 provenance. */
  const signAndAttest = () => ({
    image,
    attestations: [
      { predicateType: SPDX, predicate: spdx },
      { predicateType: SLSA1, predicate: provenance },
    ],
  });

  it("signs the digest and attests SPDX and SLSA v1 in both formats", async () => {
    const res = await post(signAndAttest(), await token());
    first = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(first)).toBe(201);
    expect(first).toMatchObject({ image, app: "web", keyId: ferry.signingKey.id });
    const items = first.items as { kind: string; format: string; status: string }[];
    expect(items.map((i) => `${i.kind} ${i.format} ${i.status}`).sort()).toEqual(
      [
        "signature cosign-legacy created",
        "signature sigstore-bundle created",
        `${SPDX} cosign-legacy created`,
        `${SPDX} sigstore-bundle created`,
        `${SLSA1} cosign-legacy created`,
        `${SLSA1} sigstore-bundle created`,
      ].sort(),
    );
  });

  it("is verified by cosign with Ferry's public key, and the earlier signer's signature still verifies", async () => {
    expect((await cosignVerify(image, ferryPub)).code).toBe(0);
    expect((await cosignVerify(image, other.publicKeyPath)).code).toBe(0);
    for (const type of ["spdxjson", "slsaprovenance1"]) {
      const run = await runCosign([
        "verify-attestation",
        "--key",
        ferryPub,
        "--type",
        type,
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        image,
      ]);
      expect(run.code, `${type}: ${run.stderr}`).toBe(0);
    }
    const wrong = await runCosign([
      "verify-attestation",
      "--key",
      other.publicKeyPath,
      "--type",
      "spdxjson",
      "--insecure-ignore-tlog=true",
      "--allow-http-registry",
      image,
    ]);
    expect(wrong.code).not.toBe(0);
  });

  it("passes Ferry's own verification with the `ferry` authority", async () => {
    const res = await fetch(`${ferry.url}/v1/verifications`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await token()}` },
      body: JSON.stringify({ image, environment: "staging" }),
    });
    const report = (await res.json()) as { allowed: boolean; checks: { name: string; passed: boolean }[] };
    expect(res.status).toBe(200);
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.allowed).toBe(true);
  });

  it("is idempotent: the same request again writes nothing", async () => {
    const sigBefore = await manifestOf(`${digest.replace(":", "-")}.sig`);
    const attBefore = await manifestOf(`${digest.replace(":", "-")}.att`);
    const refsBefore = await manifestOf(digest.replace(":", "-"));
    expect(sigBefore.layers).toHaveLength(2);
    expect(attBefore.layers).toHaveLength(2);
    expect(refsBefore.manifests).toHaveLength(3);

    const res = await post(signAndAttest(), await token());
    const again = (await res.json()) as { items: { status: string; location: string }[] };
    expect(res.status).toBe(200);
    expect(again.items.every((i) => i.status === "existing")).toBe(true);
    expect(again.items.map((i) => i.location).sort()).toEqual(
      (first.items as { location: string }[]).map((i) => i.location).sort(),
    );
    expect(await manifestOf(`${digest.replace(":", "-")}.sig`)).toEqual(sigBefore);
    expect(await manifestOf(`${digest.replace(":", "-")}.att`)).toEqual(attBefore);
    expect(await manifestOf(digest.replace(":", "-"))).toEqual(refsBefore);
  });

  it("records who asked, for what digest, with which key, and never the token", async () => {
    const bearer = await token();
    await post({ image }, bearer);
    const rows = await ferry.store.db
      .selectFrom("signings")
      .selectAll()
      .where("digest", "=", digest)
      .execute();
    expect(rows.length).toBeGreaterThanOrEqual(12);
    expect(rows[0]).toMatchObject({
      issuer: github.url,
      subject: "repo:acme/web:ref:refs/heads/main",
      app: "web",
      key_id: ferry.signingKey.id,
      repository: repo,
    });
    expect(rows[0]!.token_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(rows)).not.toContain(bearer);
    expect(ferry.logText()).not.toContain(bearer);
  });
});

describe("after a copy to production", () => {
  it("the same digest carries Ferry's signatures: cosign and Ferry's own verification pass there", async () => {
    const client = new RegistryClient({ registries: [{ url: registry.url }] });
    const source = client.repository({ registry: registry.host, repository: "staging/web" });
    const destination = client.repository({ registry: registry.host, repository: "prod/web" });
    const copied = await copyArtifact(source, digest, destination);
    expect(copied.digest).toBe(digest);
    const promoted = `${registry.host}/prod/web@${digest}`;
    expect((await cosignVerify(promoted, ferryPub)).code).toBe(0);
    const res = await fetch(`${ferry.url}/v1/verifications`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await token()}` },
      body: JSON.stringify({ image: promoted, environment: "production" }),
    });
    const report = (await res.json()) as { allowed: boolean; checks: { passed: boolean }[] };
    expect(res.status, JSON.stringify(report)).toBe(200);
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.allowed).toBe(true);
  });
});

describe("concurrent requests", () => {
  it("two replicas' worth of simultaneous requests for one digest sign it once", async () => {
    const layout = await buildImageLayout(path.join(dir, "layout2"), {});
    const second = await pushImage(layout.dir, registry, "staging/web:v2");
    const target = `${repo}@${second}`;
    const [a, b] = await Promise.all([
      post({ image: target }, await token()),
      post({ image: target }, await token()),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 201]);
    const tag = second.replace(":", "-");
    expect((await manifestOf(`${tag}.sig`)).layers).toHaveLength(1);
    expect((await manifestOf(tag)).manifests).toHaveLength(1);
    expect((await cosignVerify(target, ferryPub)).code).toBe(0);
  });
});

describe("Ferry's public key", () => {
  it("is published in the JWKS, the same key `cosign verify --key` used", async () => {
    const jwks = (await (await fetch(`${ferry.url}/.well-known/jwks.json`)).json()) as {
      keys: { x: string; y: string; crv: string }[];
    };
    const mine = ferry.signingKey.publicKey.export({ format: "jwk" });
    expect(jwks.keys.some((k) => k.crv === "P-256" && k.x === mine.x && k.y === mine.y)).toBe(true);
  });
});

describe("refusals", () => {
  async function expectRefused(res: Response, status: number, code: string): Promise<string> {
    const body = (await res.json()) as { code: string; detail: string };
    expect(res.status, JSON.stringify(body)).toBe(status);
    expect(body.code).toBe(code);
    return body.detail;
  }

  it("refuses without a token", async () => {
    await expectRefused(await post({ image }), 401, "unauthenticated");
  });

  it("refuses a pipeline of another app", async () => {
    const detail = await expectRefused(
      await post({ image }, await token({ repository_id: "99", repository: "acme/api" })),
      403,
      "forbidden",
    );
    expect(detail).toMatch(/not one of app web's pipelines/);
  });

  it("refuses an image in a repository of no app", async () => {
    const detail = await expectRefused(
      await post({ image: `${registry.host}/elsewhere/x@${digest}` }, await token()),
      403,
      "forbidden",
    );
    expect(detail).toMatch(/no app owns/);
  });

  it("refuses a tag, saying a digest is needed", async () => {
    await expectRefused(await post({ image: `${repo}:v1` }, await token()), 400, "tag_reference");
  });

  it("refuses a digest that does not exist", async () => {
    const missing = `sha256:${"0".repeat(64)}`;
    const detail = await expectRefused(
      await post({ image: `${repo}@${missing}` }, await token()),
      404,
      "not_found",
    );
    expect(detail).toMatch(/does not exist/);
  });

  it("refuses malformed, oversized and unknown predicates before touching the registry", async () => {
    await expectRefused(
      await post(
        { image, attestations: [{ predicateType: SPDX, predicate: { name: "no version" } }] },
        await token(),
      ),
      400,
      "validation_failed",
    );
    await expectRefused(
      await post(
        { image, attestations: [{ predicateType: SLSA1, predicate: { runDetails: {} } }] },
        await token(),
      ),
      400,
      "validation_failed",
    );
    const big = { ...spdx, padding: "x".repeat(600 * 1024) };
    await expectRefused(
      await post({ image, attestations: [{ predicateType: SPDX, predicate: big }] }, await token()),
      413,
      "payload_too_large",
    );
    const detail = await expectRefused(
      await post(
        { image, attestations: [{ predicateType: "https://example.com/custom/v1", predicate: {} }] },
        await token(),
      ),
      400,
      "validation_failed",
    );
    expect(detail).toMatch(/unknown predicateType/);
    await expectRefused(await post({ image, extra: true }, await token()), 400, "validation_failed");
    const att = await manifestOf(`${digest.replace(":", "-")}.att`);
    expect(att.layers).toHaveLength(2);
  });
});
