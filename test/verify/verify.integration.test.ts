import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { isFerryError } from "../../src/common/errors.ts";
import { parseConfigText } from "../../src/config/load.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import { createVerificationService } from "../../src/verify/create.ts";
import type { VerificationService } from "../../src/verify/service.ts";
import { runFerryInProcess } from "../support/cli.ts";
import { attest, generateKeyPair, sign } from "../support/cosign.ts";
import { makeTempDir } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { createTestSigstore, type TestSigstore } from "../support/sigstore-ca.ts";
import {
  attachBundle,
  clientFor,
  Identity,
  keylessDsseBundle,
  Predicates,
  predicateFile,
  pushFresh,
  statement,
} from "./fixtures.ts";

const { issuer: ISSUER, release: RELEASE, repository: REPO, ref: REF } = Identity;
const BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0";
const SIGN_V1 = "https://sigstore.dev/cosign/sign/v1";

let reg: TestRegistry;
let tmp: { path: string; remove: () => Promise<void> };
let client: RegistryClient;
let sigstore: TestSigstore;
let service: VerificationService;
let configFile: string;
let bundleFile: string;
let rootPath: string;
let leafPem: string;
const img: Record<string, { digest: string; ref: string }> = {};

function checkOf(report: Awaited<ReturnType<VerificationService["verify"]>>, name: string) {
  const check = report.checks.find((c) => c.name === name);
  if (!check) throw new Error(`no ${name} check in ${JSON.stringify(report)}`);
  return check;
}

beforeAll(async () => {
  tmp = await makeTempDir("verify-it");
  reg = await startRegistry();
  client = clientFor(reg);
  sigstore = await createTestSigstore(tmp.path);
  const ci = await generateKeyPair(join(tmp.path, "ci"));
  const other = await generateKeyPair(join(tmp.path, "other"));
  const repo = client.repository({ registry: reg.host, repository: "team/app" });
  const ok = (r: { code: number; stderr: string }) => {
    if (r.code !== 0) throw new Error(r.stderr);
  };

  const names = [
    "legacy",
    "bundle",
    "full",
    "cdx",
    "keyless",
    "evil",
    "expired",
    "other",
    "tampered",
    "liar",
    "reannotated",
  ];
  const pushed = await Promise.all(names.map((n) => pushFresh(reg, tmp.path, n)));
  names.forEach((n, i) => {
    img[n] = pushed[i]!;
  });
  const multi = await pushFresh(reg, tmp.path, "multi", [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64" },
  ]);
  img.multi = multi;
  img.multiPlatform = {
    digest: multi.built.manifests[0]!.digest,
    ref: `${reg.host}/team/app@${multi.built.manifests[0]!.digest}`,
  };

  const spdx = await predicateFile(tmp.path, "spdx", Predicates.spdx());
  const cdx = await predicateFile(tmp.path, "cdx", Predicates.cyclonedx());
  const slsa02 = await predicateFile(tmp.path, "slsa02", Predicates.slsa02(REPO, REF, BUILDER));
  const slsa1 = await predicateFile(tmp.path, "slsa1", Predicates.slsa1(REPO, REF, BUILDER));
  const empty = await predicateFile(tmp.path, "empty", {});
  const key = ci.privateKeyPath;
  // cosign runs one at a time per image: concurrent writes to one `.att` tag would race.
  await Promise.all([
    sign(img.legacy!.ref, key).then(ok),
    attest(img.bundle!.ref, key, empty, SIGN_V1, { newBundleFormat: true }).then(ok),
    (async () => {
      ok(await sign(img.full!.ref, key));
      ok(await attest(img.full!.ref, key, spdx, "spdxjson"));
      ok(await attest(img.full!.ref, key, slsa02, "slsaprovenance02"));
    })(),
    (async () => {
      ok(await attest(img.cdx!.ref, key, cdx, "cyclonedx"));
      ok(await attest(img.cdx!.ref, key, slsa1, "slsaprovenance1", { newBundleFormat: true }));
    })(),
    sign(img.other!.ref, other.privateKeyPath).then(ok),
    sign(img.tampered!.ref, key).then(ok),
    attest(img.liar!.ref, key, spdx, "spdxjson").then(ok),
    sign(img.multiPlatform!.ref, key).then(ok),
    sign(img.reannotated!.ref, key).then(ok),
  ]);

  // Keyless: the test CA stands in for Fulcio, the log key for Rekor.
  const exts = { 12: REPO, 14: REF, 15: "74" };
  const good = await sigstore.issue({ subject: RELEASE, issuer: ISSUER, extensions: exts });
  const evil = await sigstore.issue({ subject: `${RELEASE}-evil`, issuer: ISSUER, extensions: exts });
  const expired = await sigstore.issue({
    subject: RELEASE,
    issuer: ISSUER,
    notBefore: new Date(Date.now() - 3 * 3600_000),
    notAfter: new Date(Date.now() - 2 * 3600_000),
  });
  leafPem = good.pem;
  const signStatement = (d: string) => statement(d, SIGN_V1, {});
  const goodBundle = keylessDsseBundle(sigstore, good, signStatement(img.keyless!.digest));
  bundleFile = join(tmp.path, "keyless.sigstore.json");
  await writeFile(bundleFile, JSON.stringify(goodBundle));
  await attachBundle(repo, img.keyless!.digest, goodBundle, SIGN_V1);
  await attachBundle(
    repo,
    img.evil!.digest,
    keylessDsseBundle(sigstore, evil, signStatement(img.evil!.digest)),
    SIGN_V1,
  );
  await attachBundle(
    repo,
    img.expired!.digest,
    keylessDsseBundle(sigstore, expired, signStatement(img.expired!.digest), { set: false, proof: true }),
    SIGN_V1,
  );

  // An attestation made for another digest, copied under this digest's `.att` tag.
  const fullAtt = await repo.fetchManifest(`${img.full!.digest.replace(":", "-")}.att`);
  await repo.putManifest(fullAtt.bytes, fullAtt.descriptor.mediaType, {
    tag: `${img.other!.digest.replace(":", "-")}.att`,
  });

  // An SBOM attestation whose unsigned predicateType annotation claims it is provenance.
  const liarAtt = await repo.fetchManifest(`${img.liar!.digest.replace(":", "-")}.att`);
  const lying = JSON.parse(Buffer.from(liarAtt.bytes).toString("utf8"));
  lying.layers[0].annotations.predicateType = "https://slsa.dev/provenance/v0.2";
  await repo.putManifest(new TextEncoder().encode(JSON.stringify(lying)), liarAtt.descriptor.mediaType, {
    tag: `${img.liar!.digest.replace(":", "-")}.att`,
  });

  // Tampering in storage: rewrite the signed payload blob of `tampered` on the registry's disk.
  const sigManifest = await repo.fetchManifest(`${img.tampered!.digest.replace(":", "-")}.sig`);
  const payloadDigest = (
    sigManifest.manifest.value as { layers: { digest: string }[] }
  ).layers[0]!.digest.slice(7);
  const blobPath = join(
    reg.storageDir,
    "docker/registry/v2/blobs/sha256",
    payloadDigest.slice(0, 2),
    payloadDigest,
    "data",
  );
  const original = await readFile(blobPath, "utf8");
  await writeFile(blobPath, original.replace(img.tampered!.digest, img.full!.digest));

  const rootFile = await sigstore.writeTrustedRoot(tmp.path);
  rootPath = rootFile;
  const config = {
    store: { sqlite: ":memory:" },
    keys: { signing: "./signing.pem" },
    registries: [{ url: reg.url }],
    trust: {
      trustedRoot: [rootFile],
      authorities: [
        { name: "ci-key", key: ci.publicKeyPath },
        { name: "other-key", key: other.publicKeyPath },
        {
          name: "release",
          keyless: {
            issuer: ISSUER,
            subject: RELEASE,
            extensions: { sourceRepositoryUri: REPO, sourceRepositoryIdentifier: "74" },
          },
        },
        {
          name: "release-pattern",
          keyless: {
            issuer: ISSUER,
            subjectRegex: "https://github\\.com/acme/web/\\.github/workflows/release\\.yml@refs/heads/main",
          },
        },
        {
          name: "someone-else",
          keyless: {
            issuer: ISSUER,
            subject: "https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main",
          },
        },
      ],
    },
    environments: [
      { name: "key", require: { signature: { authorities: ["ci-key"] } } },
      { name: "other-key", require: { signature: { authorities: ["other-key"] } } },
      { name: "keyless", require: { signature: { authorities: ["release"] } } },
      { name: "keyless-pattern", require: { signature: { authorities: ["release-pattern"] } } },
      { name: "keyless-other", require: { signature: { authorities: ["someone-else"] } } },
      {
        name: "full",
        require: {
          signature: { authorities: ["ci-key"] },
          sbom: { authorities: ["ci-key"], maxAge: "1h" },
          provenance: {
            authorities: ["ci-key"],
            builderId: BUILDER,
            sourceRepository: `git+${REPO}.git`,
            ref: REF,
          },
        },
      },
      {
        name: "attested",
        require: {
          sbom: { authorities: ["ci-key"] },
          provenance: { authorities: ["ci-key"], builderId: BUILDER, sourceRepository: REPO, ref: REF },
        },
      },
      { name: "sbom", require: { sbom: { authorities: ["ci-key"] } } },
      { name: "provenance", require: { provenance: { authorities: ["ci-key"] } } },
      {
        name: "every-platform",
        require: { signature: { authorities: ["ci-key"], multiArch: "index-and-platforms" } },
      },
    ],
  };
  configFile = join(tmp.path, "ferry.yaml");
  await writeFile(configFile, stringify(config));
  const loaded = parseConfigText(stringify(config), configFile, {});
  service = createVerificationService(loaded.config, { readerFor: (ref) => client.repository(ref) });
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.remove();
});

describe("allowed", () => {
  it("a cosign key signature in the legacy .sig tag", async () => {
    const report = await service.verify(img.legacy!.ref, "key");
    expect(report.allowed).toBe(true);
    expect(checkOf(report, "signature").details?.candidates?.[0]).toMatchObject({
      reason: "accepted",
      authorities: ["ci-key"],
    });
  });

  it("a cosign key signature in bundle format, found through the referrers fallback index", async () => {
    const report = await service.verify(img.bundle!.ref, "key");
    expect(report.allowed).toBe(true);
    expect(checkOf(report, "signature").details?.candidates?.[0]?.source).toMatch(/^referrer sha256:/);
  });

  it("signature, SPDX SBOM and SLSA v0.2 provenance made by cosign", async () => {
    const report = await service.verify(img.full!.ref, "full");
    expect(report.checks.map((c) => [c.name, c.passed, c.reason])).toEqual([
      ["signature", true, "verified"],
      ["sbom", true, "verified"],
      ["provenance", true, "verified"],
    ]);
    expect(report.allowed).toBe(true);
  });

  it("a CycloneDX SBOM (legacy .att) and SLSA v1 provenance (bundle format)", async () => {
    const report = await service.verify(img.cdx!.ref, "attested");
    expect(report.allowed).toBe(true);
    const provenance = checkOf(report, "provenance").details?.candidates?.find(
      (c) => c.reason === "accepted",
    );
    expect(provenance?.predicateType).toBe("https://slsa.dev/provenance/v1");
  });

  it("a keyless signature from the test CA, logged with SET, inclusion proof and checkpoint", async () => {
    const report = await service.verify(img.keyless!.ref, "keyless");
    expect(report.allowed).toBe(true);
  });

  it("answers a repeat from the cache, and a new signature changes the cache key", async () => {
    const first = await service.verify(img.legacy!.ref, "key");
    const again = await service.verify(img.legacy!.ref, "key");
    expect(again.cached).toBe(true);
    expect(again.checks).toEqual(first.checks);
  });

  it("re-evaluates a signature re-pushed with the same layer and other annotations", async () => {
    const repo = client.repository({ registry: reg.host, repository: "team/app" });
    expect((await service.verify(img.reannotated!.ref, "key")).allowed).toBe(true);
    expect((await service.verify(img.reannotated!.ref, "key")).cached).toBe(true);
    // Same payload layer (same digest), but now it claims a certificate: another signer entirely.
    const tag = `${img.reannotated!.digest.replace(":", "-")}.sig`;
    const sig = await repo.fetchManifest(tag);
    const changed = JSON.parse(Buffer.from(sig.bytes).toString("utf8"));
    changed.layers[0].annotations["dev.sigstore.cosign/certificate"] = leafPem;
    await repo.putManifest(new TextEncoder().encode(JSON.stringify(changed)), sig.descriptor.mediaType, {
      tag,
    });
    const report = await service.verify(img.reannotated!.ref, "key");
    expect(report.cached).toBe(false);
    expect(report.allowed).toBe(false);
    const candidate = checkOf(report, "signature").details?.candidates?.[0];
    expect(candidate?.digest).toBe(changed.layers[0].digest);
    expect(candidate?.reason).toBe("untrusted_key");
  });
});

describe("denied, each with its own reason", () => {
  it("wrong key", async () => {
    const report = await service.verify(img.other!.ref, "key");
    const check = checkOf(report, "signature");
    expect(report.allowed).toBe(false);
    expect(check.reason).toBe("no_trusted_signature");
    expect(check.details?.candidates?.[0]?.reason).toBe("untrusted_key");
  });

  it("no signatures at all is not the same as untrusted ones", async () => {
    const report = await service.verify(img.cdx!.ref, "key");
    expect(checkOf(report, "signature").reason).toBe("no_signatures_found");
  });

  it("wrong identity", async () => {
    const report = await service.verify(img.keyless!.ref, "keyless-other");
    expect(report.allowed).toBe(false);
    expect(checkOf(report, "signature").details?.candidates?.[0]?.reason).toBe("identity_mismatch");
  });

  it("a longer attacker SAN that an unanchored pattern would accept", async () => {
    const pattern = "https://github\\.com/acme/web/\\.github/workflows/release\\.yml@refs/heads/main";
    // What sigstore-js's own policy check (String.prototype.match) would have let through:
    expect(`${RELEASE}-evil`.match(new RegExp(pattern))).not.toBeNull();
    const good = await service.verify(img.keyless!.ref, "keyless-pattern");
    expect(good.allowed).toBe(true);
    const report = await service.verify(img.evil!.ref, "keyless-pattern");
    expect(report.allowed).toBe(false);
    expect(checkOf(report, "signature").details?.candidates?.[0]?.reason).toBe("identity_mismatch");
  });

  it("an attestation whose subject is another digest", async () => {
    const report = await service.verify(img.other!.ref, "sbom");
    const check = checkOf(report, "sbom");
    expect(check.passed).toBe(false);
    expect(check.details?.candidates?.[0]?.reason).toBe("subject_mismatch");
  });

  it("a payload tampered with in storage", async () => {
    const report = await service.verify(img.tampered!.ref, "key");
    const check = checkOf(report, "signature");
    expect(check.reason).toBe("unreadable_evidence");
    expect(check.details?.candidates?.[0]?.reason).toBe("content_digest_mismatch");
  });

  it("a predicateType annotation that lies about the signed payload", async () => {
    const report = await service.verify(img.liar!.ref, "provenance");
    const check = checkOf(report, "provenance");
    expect(check.passed).toBe(false);
    expect(check.details?.candidates?.[0]?.reason).toBe("predicate_type_annotation_mismatch");
    // The lie does not make the real SBOM count either: the whole attestation is rejected.
    expect((await service.verify(img.liar!.ref, "sbom")).allowed).toBe(false);
  });

  it("a certificate used outside its validity with no log timestamp", async () => {
    const report = await service.verify(img.expired!.ref, "keyless");
    expect(report.allowed).toBe(false);
    expect(checkOf(report, "signature").details?.candidates?.[0]?.reason).toBe("no_timestamp");
  });

  it("a signature on a platform manifest only, when the policy requires the index", async () => {
    const report = await service.verify(img.multi!.ref, "key");
    expect(report.allowed).toBe(false);
    expect(checkOf(report, "signature").reason).toBe("no_signatures_found");
    const platform = await service.verify(img.multiPlatform!.ref, "key");
    expect(platform.allowed).toBe(true);
  });

  it("index-and-platforms: every platform manifest must be signed too", async () => {
    const report = await service.verify(img.multi!.ref, "every-platform");
    const platforms = report.checks.filter((c) => c.name === "platform-signature");
    expect(platforms.map((c) => c.passed).sort()).toEqual([false, true]);
    expect(platforms.find((c) => !c.passed)?.reason).toBe("platform_unsigned");
  });

  it("a tag instead of a digest is refused before any check", async () => {
    const err = await service.verify(`${reg.host}/team/app:legacy`, "key").catch((e: unknown) => e);
    expect(isFerryError(err, "tag_reference")).toBe(true);
  });

  it("an unknown digest denies with subject_not_found", async () => {
    const report = await service.verify(`${reg.host}/team/app@sha256:${"0".repeat(64)}`, "key");
    expect(checkOf(report, "discovery").reason).toBe("subject_not_found");
  });
});

describe("ferry verify", () => {
  const cli = (...args: string[]) => runFerryInProcess(["verify", ...args, "--config", configFile]);

  it("exits 0 when allowed, with the report as JSON", async () => {
    const { code, out } = await cli(img.full!.ref, "--env", "full", "--json");
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ allowed: true, digest: img.full!.digest });
  });

  it("exits 1 when denied, naming the failed check and each candidate", async () => {
    const { code, out } = await cli(img.other!.ref, "--env", "key");
    expect(code).toBe(1);
    expect(out).toContain("no_trusted_signature");
    expect(out).toContain("untrusted_key");
  });

  it("exits 2 for a tag, with the way to find the digest", async () => {
    const { code, err } = await cli(`${reg.host}/team/app:legacy`, "--env", "key");
    expect(code).toBe(2);
    expect(err).toContain("digest");
  });
});

describe("ferry verify-bundle (sigstore-conformance protocol)", () => {
  const vb = (...args: string[]) => runFerryInProcess(["verify-bundle", ...args]);

  it("verifies a keyless bundle against a digest with a custom trusted root", async () => {
    const base = ["--bundle", bundleFile, "--trusted-root", rootPath, "--certificate-oidc-issuer", ISSUER];
    expect((await vb(...base, "--certificate-identity", RELEASE, img.keyless!.digest)).code).toBe(0);
    const wrong = await vb(...base, "--certificate-identity", `${RELEASE}x`, img.keyless!.digest);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain("identity_mismatch");
    const other = await vb(...base, "--certificate-identity", RELEASE, img.full!.digest);
    expect(other.code).toBe(1);
    expect(other.err).toContain("subject_mismatch");
  });
});
