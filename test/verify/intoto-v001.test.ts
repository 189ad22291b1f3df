import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { toSignedEntity } from "@sigstore/verify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseConfigText } from "../../src/config/load.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import { compileAuthorities } from "../../src/verify/authorities.ts";
import { createVerificationService } from "../../src/verify/create.ts";
import { dsseLayerToBundle } from "../../src/verify/legacy.ts";
import type { VerificationService } from "../../src/verify/service.ts";
import { buildTrustContext } from "../../src/verify/trust-context.ts";
import { loadTrustRoots } from "../../src/verify/trust-root.ts";
import { makeTempDir } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { createTestSigstore, type IssuedCertificate, type TestSigstore } from "../support/sigstore-ca.ts";
import {
  clientFor,
  Identity,
  type LegacyIntotoOptions,
  legacyIntotoLayer,
  Predicates,
  pushFresh,
  putLegacyAttestations,
  statement,
} from "./fixtures.ts";

/**
 * Older cosign attestations: legacy `.att` layers whose cosign bundle annotation holds a Rekor
 * `intoto` v0.0.1 entry. `@sigstore/verify` refuses the entry version; Ferry verifies it itself.
 */

const { issuer: ISSUER, release: RELEASE, repository: REPO, ref: REF } = Identity;
const BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.9.0";
const SLSA02 = "https://slsa.dev/provenance/v0.2";
const SPDX = "https://spdx.dev/Document";

let reg: TestRegistry;
let tmp: { path: string; remove: () => Promise<void> };
let client: RegistryClient;
let sigstore: TestSigstore;
let service: VerificationService;
let rootFile: string;
let good: IssuedCertificate;
const img: Record<string, { digest: string; ref: string }> = {};
const layers: Record<string, ReturnType<typeof legacyIntotoLayer>> = {};

function checkOf(report: Awaited<ReturnType<VerificationService["verify"]>>, name: string) {
  const check = report.checks.find((c) => c.name === name);
  if (!check) throw new Error(`no ${name} check in ${JSON.stringify(report)}`);
  return check;
}

beforeAll(async () => {
  tmp = await makeTempDir("intoto-v001");
  reg = await startRegistry();
  client = clientFor(reg);
  sigstore = await createTestSigstore(tmp.path);
  const repo = client.repository({ registry: reg.host, repository: "team/app" });
  const exts = { 12: REPO, 14: REF, 15: "74" };
  const hour = 3600_000;
  // One at a time: `openssl ca` rewrites its index file on every issue.
  const signer = await sigstore.issue({ subject: RELEASE, issuer: ISSUER, extensions: exts });
  const sameIdentity = await sigstore.issue({ subject: RELEASE, issuer: ISSUER, extensions: exts });
  const expired = await sigstore.issue({
    subject: RELEASE,
    issuer: ISSUER,
    extensions: exts,
    notBefore: new Date(Date.now() - 3 * hour),
    notAfter: new Date(Date.now() - 2 * hour),
  });
  const notYet = await sigstore.issue({ subject: RELEASE, issuer: ISSUER, extensions: exts });
  good = signer;
  const rogue = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const trustedLogId = Buffer.from(
    (sigstore.trustedRoot.tlogs as { logId: { keyId: string } }[])[0]!.logId.keyId,
    "base64",
  );

  type Case = { cert?: IssuedCertificate; type?: string; opts?: (d: string) => LegacyIntotoOptions };
  const provenance = (d: string) => statement(d, SLSA02, Predicates.slsa02(`${REPO}.git`, REF, BUILDER));
  const cases: Record<string, Case> = {
    accepted: {},
    oldest: { type: SPDX, opts: () => ({ loggedPayload: null }) },
    forgedSet: { opts: () => ({ forgedSet: { key: rogue.privateKey, logId: trustedLogId } }) },
    untrustedLog: { opts: () => ({ forgedSet: { key: rogue.privateKey, logId: Buffer.alloc(32, 7) } }) },
    envelopeHash: { opts: () => ({ loggedEnvelope: Buffer.from("{}") }) },
    payloadHash: { opts: () => ({ loggedPayload: Buffer.from("another payload") }) },
    otherCertificate: { opts: () => ({ loggedCertificate: sameIdentity }) },
    expired: { cert: expired },
    beforeIssue: { cert: notYet, opts: () => ({ integratedTime: new Date(Date.now() - 2 * hour) }) },
    forgedSignature: { opts: () => ({ signingKey: rogue.privateKey }) },
    noEnvelopeHash: {
      opts: () => ({
        tamperBody: (body) => {
          delete body.spec.content.hash;
        },
      }),
    },
  };
  const names = Object.keys(cases);
  const pushed = await Promise.all(names.map((n) => pushFresh(reg, tmp.path, n)));
  await Promise.all(
    names.map(async (n, i) => {
      const { digest } = pushed[i]!;
      img[n] = pushed[i]!;
      const c = cases[n]!;
      const type = c.type ?? SLSA02;
      const payload = type === SPDX ? statement(digest, SPDX, Predicates.spdx()) : provenance(digest);
      layers[n] = legacyIntotoLayer(sigstore, c.cert ?? good, payload, type, c.opts?.(digest));
      await putLegacyAttestations(repo, digest, [layers[n]!]);
    }),
  );

  rootFile = await sigstore.writeTrustedRoot(tmp.path);
  const config = {
    store: { sqlite: ":memory:" },
    keys: { signing: "./signing.pem" },
    registries: [{ url: reg.url }],
    trust: {
      trustedRoot: [rootFile],
      authorities: [
        {
          name: "release",
          keyless: { issuer: ISSUER, subject: RELEASE, extensions: { sourceRepositoryUri: REPO } },
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
      {
        name: "provenance",
        require: {
          provenance: { authorities: ["release"], builderId: BUILDER, sourceRepository: REPO, ref: REF },
        },
      },
      { name: "sbom", require: { sbom: { authorities: ["release"] } } },
      { name: "someone-else", require: { provenance: { authorities: ["someone-else"] } } },
    ],
  };
  const file = join(tmp.path, "ferry.yaml");
  const loaded = parseConfigText(stringify(config), file, {});
  service = createVerificationService(loaded.config, { readerFor: (ref) => client.repository(ref) });
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.remove();
});

describe("an older cosign attestation logged as Rekor intoto v0.0.1", () => {
  it("is refused by @sigstore/verify on its own", () => {
    const bundle = dsseLayerToBundle(
      {
        mediaType: "application/vnd.dsse.envelope.v1+json",
        digest: "sha256:x",
        size: 0,
        annotations: layers.accepted!.annotations,
      },
      layers.accepted!.envelope,
    );
    const ctx = buildTrustContext(compileAuthorities([], undefined), loadTrustRoots([rootFile], false));
    expect(() => ctx.keyless[0]!.verifier.verify(toSignedEntity(bundle))).toThrow(
      expect.objectContaining({ code: "TLOG_BODY_ERROR" }),
    );
  });

  it("is accepted by Ferry when the SET, the body, the certificate and the signature all agree", async () => {
    const report = await service.verify(img.accepted!.ref, "provenance");
    expect(report.allowed).toBe(true);
    expect(checkOf(report, "provenance").details?.candidates).toEqual([
      expect.objectContaining({ reason: "accepted", authorities: ["release"], predicateType: SLSA02 }),
    ]);
  });

  it("is accepted without a payload hash, as Rekor's oldest entries were written", async () => {
    const report = await service.verify(img.oldest!.ref, "sbom");
    expect(report.allowed).toBe(true);
  });

  it("is denied for a signer the policy does not name", async () => {
    const report = await service.verify(img.accepted!.ref, "someone-else");
    expect(report.allowed).toBe(false);
    expect(checkOf(report, "provenance").details?.candidates?.[0]?.reason).toBe("identity_mismatch");
  });
});

describe("denied, each with its own reason", () => {
  it.each([
    ["forgedSet", "a SET signed by an untrusted key in the trusted log's name", "tlog_set_invalid"],
    ["untrustedLog", "a SET from a log the trusted root does not list", "tlog_set_invalid"],
    ["envelopeHash", "a body logging another envelope's hash", "tlog_envelope_mismatch"],
    ["payloadHash", "a body logging another payload's hash", "tlog_envelope_mismatch"],
    ["otherCertificate", "a body naming another certificate than the signer's", "tlog_certificate_mismatch"],
    ["expired", "an integrated time after the certificate expired", "tlog_time_outside_certificate"],
    ["beforeIssue", "an integrated time before the certificate was issued", "tlog_time_outside_certificate"],
    ["forgedSignature", "an envelope not signed by the certificate's key", "signature_invalid"],
    ["noEnvelopeHash", "a logged body without the envelope hash", "tlog_entry_malformed"],
  ])("%s: %s", async (name, _what, reason) => {
    const report = await service.verify(img[name]!.ref, "provenance");
    const check = checkOf(report, "provenance");
    expect(report.allowed).toBe(false);
    expect(check.reason).toBe("no_trusted_provenance");
    expect(check.details?.candidates?.map((c) => c.reason)).toEqual([reason]);
  });
});
