/**
 * A staging Ferry signs a verification summary for each promotion; a production Ferry, with its own
 * key, trusts the staging Ferry's key and requires that summary instead of re-verifying everything.
 * Both against one real registry; cosign reads the summaries as any third party would.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.ts";
import { EvidenceStep } from "../../src/evidence/step.ts";
import { type VerificationSummary, VSA_PREDICATE_TYPE, verificationSummary } from "../../src/evidence/vsa.ts";
import { PromotionStore } from "../../src/promotion/store.ts";
import { createRegistryClient } from "../../src/registry/client.ts";
import { legacyTag } from "../../src/registry/cosign-tags.ts";
import type { ArtifactWriter } from "../../src/registry/ports.ts";
import { attestationLayer, signStatement } from "../../src/signing/attachments.ts";
import { generateSigningKeyPem, parseSigningKey, type SigningKey } from "../../src/signing/keys.ts";
import { appendLegacyLayer } from "../../src/signing/publish.ts";
import { keySigner } from "../../src/signing/signer.ts";
import { decide } from "../../src/verify/report.ts";
import { githubClaims } from "../identity/fixtures.ts";
import { verifyAttestation } from "../support/cosign.ts";
import { callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";
const STAGING_URL = "https://ferry-staging.test";
const PRODUCTION_URL = "https://ferry-production.test";
const DAY = 86_400_000;

let registry: TestRegistry;
let github: OidcIssuer;
let staging: TestFerry;
let production: TestFerry;
let writer: ArtifactWriter;
let work: string;
let first: SignedImage;
let stagingPub: string;
let stagingRepo: string;

type Step = { name: string; status: string; data?: Record<string, unknown> };
type Resource = { id: string; state: string; steps: Step[]; result?: { reason: string } };

const token = () => github.sign(githubClaims({ iss: github.url, aud: AUD }));

async function finished(ferry: TestFerry, id: string): Promise<Resource> {
  for (let i = 0; i < 60; i++) {
    const { json } = await callApi(ferry, await token(), "GET", `/v1/promotions/${id}?wait=5s`);
    const p = json as unknown as Resource;
    if (!["pending", "waiting", "running"].includes(p.state)) return p;
  }
  throw new Error(`promotion ${id} did not finish`);
}

async function promote(ferry: TestFerry, digest: string, to: string): Promise<Resource> {
  const { status, json } = await callApi(ferry, await token(), "POST", "/v1/promotions", {
    app: "web",
    digest,
    to,
  });
  expect(status, JSON.stringify(json)).toBe(201);
  return finished(ferry, String(json.id));
}

/** The production Ferry's verdict on a digest in the staging repository. */
async function verifyForProduction(digest: string) {
  const { status, json } = await callApi(production, await token(), "POST", "/v1/verifications", {
    image: `${stagingRepo}@${digest}`,
    environment: "production",
  });
  expect(status, JSON.stringify(json)).toBe(200);
  const checks = json.checks as { name: string; passed: boolean; reason: string; message: string }[];
  return { allowed: json.allowed as boolean, summary: checks.find((c) => c.name === "summary")! };
}

/**
 * Signs a summary of `digest` with `key` (the staging Ferry's, unless another is given), with the
 * fields a staging Ferry writes changed by `over`, and appends it to the `.att` tag of `attachTo`.
 */
async function attachSummary(
  digest: string,
  over: Partial<VerificationSummary>,
  { key = staging.signingKey, attachTo = digest }: { key?: SigningKey; attachTo?: string } = {},
) {
  const predicate = {
    ...verificationSummary({
      verifierId: STAGING_URL,
      timeVerified: Date.now(),
      repository: stagingRepo,
      digest,
      environment: "staging",
      policyHash: "0".repeat(64),
      report: decide(digest, "staging", [
        { name: "signature", passed: true, reason: "verified", message: "m" },
      ]),
      builders: {},
    }),
    ...over,
  };
  const { envelope } = await signStatement(
    keySigner(key),
    stagingRepo,
    digest,
    VSA_PREDICATE_TYPE,
    predicate,
  );
  await appendLegacyLayer(
    writer,
    attachTo,
    "att",
    attestationLayer(envelope, VSA_PREDICATE_TYPE),
    async () => false,
  );
}

beforeAll(async () => {
  [registry, github] = await Promise.all([startRegistry(), startOidcIssuer()]);
  work = mkdtempSync(path.join(tmpdir(), "ferry-evidence-"));
  stagingRepo = `${registry.host}/staging/web`;
  first = await pushSignedImage(registry, "staging/web", work, { bundle: false });
  const app = (images: Record<string, string>) => ({
    name: "web",
    images,
    pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
  });
  const issuers = [loopbackIssuerConfig("github", github, AUD, { platform: "github" })];
  staging = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: STAGING_URL },
    issuers,
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ci", key: first.keys.publicKeyPath }] },
    environments: [{ name: "staging", require: { signature: { authorities: ["ci"] } } }],
    apps: [app({ staging: stagingRepo })],
    promotion: { pollInterval: "200ms" },
  });
  // What the production side is given: the staging Ferry's public key, nothing of its store.
  stagingPub = path.join(work, "ferry-staging.pub");
  writeFileSync(stagingPub, staging.signingKey.publicKeyPem);
  production = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: PRODUCTION_URL },
    issuers,
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "staging-ferry", key: stagingPub, verifierId: STAGING_URL }] },
    environments: [
      // Guarded by the staging Ferry: this one only tracks the order, and signs nothing for it.
      { name: "staging", evidence: { summary: false } },
      {
        name: "production",
        after: "staging",
        require: { summary: { from: "staging", maxAge: "7d", verifier: "staging-ferry" } },
      },
    ],
    apps: [app({ staging: stagingRepo, production: `${registry.host}/prod/web` })],
    promotion: { pollInterval: "200ms" },
  });
  const { config } = parseConfigText(
    `{ store: { sqlite: ./x.db }, keys: { signing: ./x.pem }, registries: [{ url: "${registry.url}" }] }`,
    path.join(work, "x.yaml"),
    {},
  );
  writer = createRegistryClient(config).repository({ registry: registry.host, repository: "staging/web" });
});

afterAll(async () => {
  await Promise.all([staging?.close(), production?.close()]);
  await Promise.all([registry?.stop(), github?.stop()]);
});

describe("a signed verification summary per promotion", () => {
  let promoted: Resource;

  it("is attached when a promotion succeeds, and cosign verifies it with Ferry's key in both formats", async () => {
    promoted = await promote(staging, first.digest, "staging");
    expect(promoted.state, JSON.stringify(promoted)).toBe("promoted");
    expect(promoted.steps.find((s) => s.name === "evidence")?.status).toBe("done");
    // What the step did is kept on the stored step.
    const stored = (await new PromotionStore(staging.store).get(promoted.id))!;
    const summary = stored.steps.find((s) => s.name === "evidence")!.data?.summary as {
      digest: string;
      attached: { format: string; status: string }[];
    };
    expect(summary.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(summary.attached).toEqual([
      expect.objectContaining({
        format: "cosign-legacy",
        status: "created",
        location: legacyTag(first.digest, "att"),
      }),
      expect.objectContaining({ format: "sigstore-bundle", status: "created" }),
    ]);

    for (const newBundleFormat of [false, true]) {
      const res = await verifyAttestation(first.ref, stagingPub, VSA_PREDICATE_TYPE, { newBundleFormat });
      expect(res.code, `${newBundleFormat ? "bundle" : "legacy"}: ${res.stderr}`).toBe(0);
      const statements = res.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(Buffer.from(JSON.parse(line).payload, "base64").toString()))
        .filter((s) => s.predicateType === VSA_PREDICATE_TYPE);
      expect(statements.length).toBeGreaterThan(0);
      expect(statements[0]).toMatchObject({
        subject: [{ name: stagingRepo, digest: { sha256: first.digest.slice(7) } }],
        predicate: {
          verifier: { id: STAGING_URL },
          resourceUri: `pkg:oci/web@${first.digest}?repository_url=${stagingRepo}`,
          policy: {
            uri: `${STAGING_URL}/v1/policies/staging`,
            digest: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
          },
          verificationResult: "PASSED",
          verifiedLevels: [],
          slsaVersion: "1.0",
        },
      });
      // The cosign signature it relied on, by the blob's digest.
      expect(statements[0].predicate.inputAttestations).toEqual([
        expect.objectContaining({ uri: expect.stringMatching(new RegExp(`^oci://${stagingRepo}@sha256:`)) }),
      ]);
    }
  });

  it("is found, not written again, when the step runs again (a rerun after a crash)", async () => {
    const record = (await new PromotionStore(staging.store).get(promoted.id))!;
    const step = new EvidenceStep({
      signer: keySigner(staging.signingKey),
      writerFor: () => writer,
      verifierId: STAGING_URL,
      builders: {},
      environments: new Set(["staging"]),
    });
    const again = await step.run(record, record.steps.find((s) => s.name === "evidence")!, {
      lease: undefined as never,
      signal: new AbortController().signal,
      attempt: 2,
    });
    expect(again.status).toBe("done");
    const data =
      again.status === "done" ? (again.data?.summary as { digest: string; attached: unknown[] }) : undefined;
    expect(data?.attached).toEqual([
      expect.objectContaining({ status: "existing" }),
      expect.objectContaining({ status: "existing" }),
    ]);
    expect(data?.digest).toBe(
      (record.steps.find((s) => s.name === "evidence")!.data!.summary as { digest: string }).digest,
    );
    const att = await writer.findManifest(legacyTag(first.digest, "att"));
    const layers = att?.manifest.kind === "image" ? att.manifest.value.layers : [];
    expect(layers.filter((l) => l.annotations?.predicateType === VSA_PREDICATE_TYPE)).toHaveLength(1);
    const referrers = await writer.listReferrers(first.digest);
    expect(
      referrers.filter((r) => r.annotations?.["dev.sigstore.bundle.predicateType"] === VSA_PREDICATE_TYPE),
    ).toHaveLength(1);
  });
});

describe("summaries of the same digest and policy", () => {
  it("replace Ferry's own older one, and keep everyone else's", async () => {
    const image = await pushSignedImage(registry, "staging/web", work, { bundle: false, keys: first.keys });
    const p = await promote(staging, image.digest, "staging");
    expect(p.state).toBe("promoted");
    // Kept: the same statement for another environment, and one by another key.
    await attachSummary(image.digest, {
      policy: { uri: `${STAGING_URL}/v1/policies/canary`, digest: { sha256: "0".repeat(64) } },
    });
    await attachSummary(image.digest, {}, { key: parseSigningKey(generateSigningKeyPem(), "other") });
    const summaryLayers = async () => {
      const att = await writer.findManifest(legacyTag(image.digest, "att"));
      return (att?.manifest.kind === "image" ? att.manifest.value.layers : []).filter(
        (l) => l.annotations?.predicateType === VSA_PREDICATE_TYPE,
      );
    };
    const bundles = async () =>
      (await writer.listReferrers(image.digest)).filter(
        (r) => r.annotations?.["dev.sigstore.bundle.predicateType"] === VSA_PREDICATE_TYPE,
      );
    const before = { layers: await summaryLayers(), bundles: await bundles() };
    expect(before.layers).toHaveLength(3);
    expect(before.bundles).toHaveLength(1);

    // The same digest into the same repository again, verified later: a newer summary.
    const record = (await new PromotionStore(staging.store).get(p.id))!;
    const later = {
      ...record,
      steps: record.steps.map((s) => (s.name === "copy" ? { ...s, finishedAt: s.finishedAt! + 60_000 } : s)),
    };
    const step = new EvidenceStep({
      signer: keySigner(staging.signingKey),
      writerFor: () => writer,
      verifierId: STAGING_URL,
      builders: {},
      environments: new Set(["staging"]),
    });
    const outcome = await step.run(later, later.steps.find((s) => s.name === "evidence")!, {
      lease: undefined as never,
      signal: new AbortController().signal,
      attempt: 1,
    });
    expect(outcome.status === "done" && outcome.data?.summary).toMatchObject({
      attached: [{ status: "created" }, { status: "created" }],
    });
    const after = { layers: await summaryLayers(), bundles: await bundles() };
    expect(after.layers).toHaveLength(3);
    expect(after.layers.map((l) => l.digest)).not.toContain(before.layers[0]!.digest);
    expect(after.layers.slice(0, 2)).toEqual(before.layers.slice(1));
    expect(after.bundles).toHaveLength(1);
    expect(after.bundles[0]!.digest).not.toBe(before.bundles[0]!.digest);
    // cosign's own attestation layer is still there, and cosign still verifies the new summary.
    const att = await writer.findManifest(legacyTag(image.digest, "att"));
    expect(att?.manifest.kind === "image" && att.manifest.value.layers).toHaveLength(4);
    for (const newBundleFormat of [false, true]) {
      const res = await verifyAttestation(image.ref, stagingPub, VSA_PREDICATE_TYPE, { newBundleFormat });
      expect(res.code, res.stderr).toBe(0);
    }
  });
});

describe("an upstream summary as a gate", () => {
  it("lets a production Ferry with another key promote on the staging Ferry's signed decision", async () => {
    expect((await promote(production, first.digest, "staging")).state).toBe("promoted");
    const p = await promote(production, first.digest, "production");
    expect(p.state, JSON.stringify(p)).toBe("promoted");
    expect(p.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "copy:done",
      "gitops:skipped",
      "evidence:done",
      "record:done",
    ]);
    // The production Ferry's own summary, by its own key, relied on the staging summary alone.
    const productionPub = path.join(work, "ferry-production.pub");
    writeFileSync(productionPub, production.signingKey.publicKeyPem);
    const res = await verifyAttestation(
      `${registry.host}/prod/web@${first.digest}`,
      productionPub,
      VSA_PREDICATE_TYPE,
    );
    expect(res.code, res.stderr).toBe(0);
    const ours = res.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(Buffer.from(JSON.parse(line).payload, "base64").toString()))
      .find((s) => s.predicate.verifier.id === PRODUCTION_URL);
    expect(ours.predicate.policy.uri).toBe(`${PRODUCTION_URL}/v1/policies/production`);
    const stagingSummary = await writer.findManifest(legacyTag(first.digest, "att"));
    const layer =
      stagingSummary?.manifest.kind === "image"
        ? stagingSummary.manifest.value.layers.find(
            (l) => l.annotations?.predicateType === VSA_PREDICATE_TYPE,
          )
        : undefined;
    const bundle = (await writer.listReferrers(first.digest)).find(
      (r) => r.annotations?.["dev.sigstore.bundle.predicateType"] === VSA_PREDICATE_TYPE,
    );
    // Both copies of the staging summary verified, so both are inputs; nothing else was needed.
    expect(ours.predicate.inputAttestations).toEqual([
      expect.objectContaining({ digest: { sha256: layer!.digest.slice(7) } }),
      expect.objectContaining({ annotations: { manifestDigest: bundle!.digest } }),
    ]);
  });

  it("denies a digest without a summary", async () => {
    const bare = await pushSignedImage(registry, "staging/web", work, { bundle: false, keys: first.keys });
    const { allowed, summary } = await verifyForProduction(bare.digest);
    expect(allowed).toBe(false);
    expect(summary).toMatchObject({ passed: false, reason: "no_summary" });
  });

  it("denies each summary that does not qualify, each with its own reason", async () => {
    const cases: [string, (digest: string) => Promise<void>][] = [
      [
        "summary_expired",
        (d) => attachSummary(d, { timeVerified: new Date(Date.now() - 8 * DAY).toISOString() }),
      ],
      // Several near misses: the closest one is the reason (an old one for staging beats a fresh one
      // for another environment).
      [
        "summary_expired",
        async (d) => {
          await attachSummary(d, {
            policy: { uri: `${STAGING_URL}/v1/policies/production`, digest: { sha256: "0".repeat(64) } },
          });
          await attachSummary(d, { timeVerified: new Date(Date.now() - 8 * DAY).toISOString() });
        },
      ],
      [
        "summary_environment_mismatch",
        (d) =>
          attachSummary(d, {
            policy: { uri: `${STAGING_URL}/v1/policies/production`, digest: { sha256: "0".repeat(64) } },
          }),
      ],
      // Signed with the trusted key, but by a verifier this key does not sign for.
      [
        "summary_verifier_mismatch",
        (d) => attachSummary(d, { verifier: { id: "https://ferry-elsewhere.test" } }),
      ],
      // A well-formed summary by another Ferry, whose key production does not trust.
      [
        "summary_untrusted",
        (d) => attachSummary(d, {}, { key: parseSigningKey(generateSigningKeyPem(), "other") }),
      ],
      // The staging summary of another digest, copied onto this one.
      ["summary_digest_mismatch", async (d) => attachSummary(first.digest, {}, { attachTo: d })],
      // Names this digest in its subject but another in resourceUri.
      [
        "summary_digest_mismatch",
        (d) => attachSummary(d, { resourceUri: `pkg:oci/web@${first.digest}?repository_url=${stagingRepo}` }),
      ],
    ];
    for (const [reason, attach] of cases) {
      const image = await pushSignedImage(registry, "staging/web", work, { bundle: false, keys: first.keys });
      await attach(image.digest);
      const { allowed, summary } = await verifyForProduction(image.digest);
      expect(allowed, reason).toBe(false);
      expect(summary, reason).toMatchObject({ passed: false, reason });
    }
  });
});
