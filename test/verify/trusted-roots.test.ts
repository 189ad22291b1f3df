import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";
import type { RegistryClient } from "../../src/registry/client.ts";
import { createVerificationService } from "../../src/verify/create.ts";
import type { VerificationService } from "../../src/verify/service.ts";
import { makeTempDir } from "../support/proc.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { createTestSigstore, type TestSigstore } from "../support/sigstore-ca.ts";
import { attachBundle, clientFor, Identity, keylessDsseBundle, pushFresh, statement } from "./fixtures.ts";

/**
 * Two private CAs, each in its own trusted root (say, an internal Fulcio and a partner's). Each
 * keyless authority trusts one of them: a certificate from CA B that claims authority A's identity
 * must not satisfy A, although B is trusted (for B's own signers).
 */
const SIGN_V1 = "https://sigstore.dev/cosign/sign/v1";
const { issuer: ISSUER, release: RELEASE } = Identity;
const PARTNER = "https://github.com/partner/tool/.github/workflows/release.yml@refs/heads/main";

let reg: TestRegistry;
let tmp: { path: string; remove: () => Promise<void> };
let client: RegistryClient;
let service: VerificationService;
let rootA: string;
let rootB: string;
const img: Record<string, string> = {};

async function sigstoreIn(dir: string): Promise<{ sigstore: TestSigstore; root: string }> {
  await mkdir(dir, { recursive: true });
  const sigstore = await createTestSigstore(dir);
  return { sigstore, root: await sigstore.writeTrustedRoot(dir) };
}

function config(authorities: unknown[]) {
  return {
    store: { sqlite: ":memory:" },
    keys: { signing: "./signing.pem" },
    registries: [{ url: reg.url }],
    trust: { trustedRoot: [rootA, rootB], authorities },
    environments: [
      { name: "a", require: { signature: { authorities: ["release"] } } },
      { name: "b", require: { signature: { authorities: ["partner"] } } },
    ],
  };
}

beforeAll(async () => {
  tmp = await makeTempDir("verify-roots");
  reg = await startRegistry();
  client = clientFor(reg);
  const [a, b] = await Promise.all([sigstoreIn(join(tmp.path, "a")), sigstoreIn(join(tmp.path, "b"))]);
  rootA = a.root;
  rootB = b.root;
  const repo = client.repository({ registry: reg.host, repository: "team/app" });
  const sign = async (name: string, sigstore: TestSigstore, subject: string) => {
    const pushed = await pushFresh(reg, tmp.path, name);
    const cert = await sigstore.issue({ subject, issuer: ISSUER });
    await attachBundle(
      repo,
      pushed.digest,
      keylessDsseBundle(sigstore, cert, statement(pushed.digest, SIGN_V1, {})),
      SIGN_V1,
    );
    img[name] = pushed.ref;
  };
  await sign("byA", a.sigstore, RELEASE);
  // CA B issues a certificate in A's signer's name.
  await sign("forgedByB", b.sigstore, RELEASE);
  await sign("partner", b.sigstore, PARTNER);
  const text = stringify(
    config([
      { name: "release", keyless: { issuer: ISSUER, subject: RELEASE, trustedRoot: rootA } },
      { name: "partner", keyless: { issuer: ISSUER, subject: PARTNER, trustedRoot: rootB } },
    ]),
  );
  const loaded = parseConfigText(text, join(tmp.path, "ferry.yaml"), {});
  service = createVerificationService(loaded.config, { readerFor: (ref) => client.repository(ref) });
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.remove();
});

describe("a keyless authority trusts only the root it names", () => {
  it("a certificate from its own root: allowed", async () => {
    expect((await service.verify(img.byA!, "a")).allowed).toBe(true);
    expect((await service.verify(img.partner!, "b")).allowed).toBe(true);
  });

  it("a certificate from another trusted root claiming its identity: denied", async () => {
    const report = await service.verify(img.forgedByB!, "a");
    expect(report.allowed).toBe(false);
    const candidate = report.checks[0]?.details?.candidates?.[0];
    expect(candidate?.reason).toBe("certificate_untrusted");
    expect(candidate?.message).toContain(rootA);
  });
});

describe("trust.authorities[].keyless.trustedRoot at config load", () => {
  const problems = (authorities: unknown[]) => {
    try {
      parseConfigText(stringify(config(authorities)), join(tmp.path, "ferry.yaml"), {});
      return "";
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map((p) => `${p.path}: ${p.message}`).join("\n");
    }
  };

  it("is required when several roots are configured, and reported with its path", () => {
    expect(problems([{ name: "release", keyless: { issuer: ISSUER, subject: RELEASE } }])).toMatch(
      /trust\.authorities\[0\]\.keyless\.trustedRoot.*required when several trusted roots/,
    );
  });

  it("must name a configured root", () => {
    const unknown = join(tmp.path, "elsewhere.json");
    expect(
      problems([{ name: "release", keyless: { issuer: ISSUER, subject: RELEASE, trustedRoot: unknown } }]),
    ).toMatch(/trust\.authorities\[0\]\.keyless\.trustedRoot.*unknown trusted root/);
    expect(
      problems([
        { name: "release", keyless: { issuer: ISSUER, subject: RELEASE, trustedRoot: "public-good" } },
      ]),
    ).toMatch(/unknown trusted root "public-good"/);
  });
});
