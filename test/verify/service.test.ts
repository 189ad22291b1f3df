import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type Clock, FakeClock } from "../../src/common/clock.ts";
import { FerryError } from "../../src/common/errors.ts";
import { sha256 } from "../../src/registry/digest.ts";
import type { Descriptor } from "../../src/registry/manifest.ts";
import { parseManifest } from "../../src/registry/manifest.ts";
import { compileAuthorities } from "../../src/verify/authorities.ts";
import { appIndex } from "../../src/verify/binding.ts";
import { DEFAULT_LIMITS, type VerificationLimits } from "../../src/verify/limits.ts";
import { compileRequirements } from "../../src/verify/policy.ts";
import type { ArtifactFetcher, FetchOptions, ManifestObject } from "../../src/verify/ports.ts";
import { VerificationService } from "../../src/verify/service.ts";
import { buildTrustContext } from "../../src/verify/trust-context.ts";

type PrivateKey = ReturnType<typeof generateKeyPairSync>["privateKey"];
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const CONFIG = { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256("{}"), size: 2 };

function object(bytes: Uint8Array): ManifestObject {
  return { digest: sha256(bytes), bytes, manifest: parseManifest(bytes, undefined, "fake") };
}

/** A simple-signing layer for `digest`, naming `repository`, signed with `key`. */
function signatureLayer(digest: string, repository: string, key: PrivateKey) {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": repository },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  const layer: Descriptor = {
    mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
    digest: sha256(payload),
    size: payload.length,
    annotations: {
      "dev.cosignproject.cosign/signature": sign("sha256", payload, key).toString("base64"),
    },
  };
  return { layer, payload };
}

interface FakeOptions {
  signWith: PrivateKey;
  /** The repository the signature names (default `r.test/app`, the one verified). */
  signedFor?: string;
  /** Manifest reads hang until their signal aborts. */
  hang?: boolean;
  /** Blob reads hang until their signal aborts. */
  stallBlobs?: boolean;
  /** How many (identical) signature layers the `.sig` manifest lists. */
  layers?: number;
  /** How many (unfetchable) referrers the referrers list names. */
  referrers?: number;
  /** Make the subject an index of this many platform manifests. */
  platforms?: number;
}

/** An in-memory registry holding one image and its cosign `.sig` tag; records requests and signals. */
function fakeRegistry(opts: FakeOptions) {
  const image = opts.platforms
    ? encode({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: Array.from({ length: opts.platforms }, (_, i) => ({
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: sha256(`platform ${i}`),
          size: 10,
          platform: { os: "linux", architecture: `arch${i}` },
        })),
      })
    : encode({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: CONFIG,
        layers: [],
      });
  const digest = sha256(image);
  const { layer, payload } = signatureLayer(digest, opts.signedFor ?? "r.test/app", opts.signWith);
  let sigManifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: CONFIG,
    layers: Array.from({ length: opts.layers ?? 1 }, () => layer),
  };
  const requests: string[] = [];
  const signals: AbortSignal[] = [];
  const hangUntilAborted = (options?: FetchOptions) =>
    new Promise<never>((_, reject) => {
      const signal = options?.signal;
      if (signal) {
        signals.push(signal);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      }
    });
  const referrers: Descriptor[] = Array.from({ length: opts.referrers ?? 0 }, (_, i) => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: sha256(`referrer ${i}`),
    size: 100,
  }));
  const fetcher = {
    location: "r.test/app",
    async manifest(d: string, options?: FetchOptions) {
      requests.push(`manifest ${d}`);
      if (opts.hang) await hangUntilAborted(options);
      if (d !== digest) throw new FerryError("not_found", "no such manifest");
      return object(image);
    },
    async blob(d: Descriptor, _max: number, options?: FetchOptions) {
      requests.push(`blob ${d.digest}`);
      if (opts.stallBlobs) await hangUntilAborted(options);
      return payload;
    },
    async referrers() {
      requests.push("referrers");
      return referrers;
    },
    async legacyTag(tag: string) {
      requests.push(`tag ${tag}`);
      return tag.endsWith(".sig") ? object(encode(sigManifest)) : undefined;
    },
  } satisfies ArtifactFetcher;
  /** Re-pushes the `.sig` manifest with the same layer and one more annotation on it. */
  const reannotate = (annotations: Record<string, string>) => {
    sigManifest = {
      ...sigManifest,
      layers: [{ ...layer, annotations: { ...layer.annotations, ...annotations } }],
    };
  };
  return { digest, fetcher, requests, signals, reannotate, payloadSize: payload.length };
}

function serviceFor(
  fetcher: ArtifactFetcher,
  trusted: ReturnType<typeof generateKeyPairSync>["publicKey"],
  options: {
    timeoutMs?: number;
    limits?: Partial<VerificationLimits>;
    multiArch?: boolean;
    clock?: Clock;
  } = {},
) {
  const authorities = compileAuthorities([{ name: "ci", key: "ferry" }], trusted);
  const trust = buildTrustContext(authorities, { roots: [] });
  const multiArch = options.multiArch ? ("index-and-platforms" as const) : ("index" as const);
  const policy = compileRequirements(
    "prod",
    { signature: { authorities: ["ci"], count: 1, multiArch } },
    authorities,
    [],
  );
  return new VerificationService({
    policies: new Map([["prod", policy]]),
    trust,
    fetcherFor: () => fetcher,
    timeoutMs: options.timeoutMs ?? 5_000,
    cacheTtlMs: 60_000,
    maxBlobBytes: 1 << 20,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    appOf: appIndex([
      { name: "app", images: { staging: "r.test/staging-app", prod: "r.test/app" } },
      { name: "other", images: { staging: "r.test/other" } },
    ]),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}

describe("VerificationService", () => {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" });

  it("allows a digest signed by the trusted key, and makes each request once", async () => {
    const { digest, fetcher, requests } = fakeRegistry({ signWith: key.privateKey });
    const report = await serviceFor(fetcher, key.publicKey).verify(`r.test/app@${digest}`, "prod");
    expect(report.allowed).toBe(true);
    expect(new Set(requests).size).toBe(requests.length);
  });

  it("denies a key it does not trust, naming the candidate", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: other.privateKey });
    const report = await serviceFor(fetcher, key.publicKey).verify(`r.test/app@${digest}`, "prod");
    expect(report.allowed).toBe(false);
    expect(report.checks[0]).toMatchObject({
      reason: "no_trusted_signature",
      details: { candidates: [{ reason: "untrusted_key" }] },
    });
  });

  it("answers a repeat from the decision cache", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: key.privateKey });
    const service = serviceFor(fetcher, key.publicKey);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(false);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(true);
  });

  it("re-evaluates a signature re-pushed with the same layer but other annotations", async () => {
    const { digest, fetcher, reannotate } = fakeRegistry({ signWith: key.privateKey });
    const service = serviceFor(fetcher, key.publicKey);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).allowed).toBe(true);
    // The same payload layer, now claiming a certificate: a different signer, to be judged anew.
    reannotate({
      "dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    });
    const again = await service.verify(`r.test/app@${digest}`, "prod");
    expect(again.cached).toBe(false);
    expect(again.allowed).toBe(false);
  });

  it("denies on timeout, and the deadline aborts the reads in flight", async () => {
    const { digest, fetcher, signals } = fakeRegistry({ signWith: key.privateKey, hang: true });
    const report = await serviceFor(fetcher, key.publicKey, { timeoutMs: 50 }).verify(
      `r.test/app@${digest}`,
      "prod",
    );
    expect(report).toMatchObject({ allowed: false, checks: [{ name: "discovery", reason: "timeout" }] });
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it("times its deadline and its decision cache on the injected clock", async () => {
    const clock = new FakeClock();
    const hung = fakeRegistry({ signWith: key.privateKey, hang: true });
    const pending = serviceFor(hung.fetcher, key.publicKey, { timeoutMs: 5_000, clock }).verify(
      `r.test/app@${hung.digest}`,
      "prod",
    );
    await clock.whenSleeping();
    await clock.advance(5_000);
    expect((await pending).checks[0]?.reason).toBe("timeout");

    const { digest, fetcher } = fakeRegistry({ signWith: key.privateKey });
    const service = serviceFor(fetcher, key.publicKey, { clock });
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(false);
    await clock.advance(59_999);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(true);
    await clock.advance(1);
    expect((await service.verify(`r.test/app@${digest}`, "prod")).cached).toBe(false);
  });

  it("a stalled blob read is aborted at the deadline and no decision is cached from it", async () => {
    const stalled = fakeRegistry({ signWith: key.privateKey, stallBlobs: true });
    const service = serviceFor(stalled.fetcher, key.publicKey, { timeoutMs: 50 });
    const report = await service.verify(`r.test/app@${stalled.digest}`, "prod");
    expect(report.checks[0]?.reason).toBe("timeout");
    expect(stalled.signals.some((s) => s.aborted)).toBe(true);
    expect(stalled.requests.filter((r) => r.startsWith("blob"))).toHaveLength(1);
  });

  it("refuses an unknown environment and a tag", async () => {
    const { digest, fetcher } = fakeRegistry({ signWith: key.privateKey });
    const service = serviceFor(fetcher, key.publicKey);
    await expect(service.verify(`r.test/app@${digest}`, "nope")).rejects.toMatchObject({ code: "not_found" });
    await expect(service.verify("r.test/app:latest", "prod")).rejects.toMatchObject({
      code: "tag_reference",
    });
  });
});

describe("trust.limits: each cap denies with its own reason, before the excess is read", () => {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const verify = async (fake: ReturnType<typeof fakeRegistry>, options: Parameters<typeof serviceFor>[2]) =>
    serviceFor(fake.fetcher, key.publicKey, options).verify(`r.test/app@${fake.digest}`, "prod");

  it("too many layers in a signature manifest: too_many_layers, no blob read", async () => {
    const fake = fakeRegistry({ signWith: key.privateKey, layers: 9 });
    const report = await verify(fake, { limits: { layers: 8 } });
    expect(report).toMatchObject({
      allowed: false,
      checks: [{ name: "discovery", reason: "too_many_layers" }],
    });
    expect(fake.requests.filter((r) => r.startsWith("blob"))).toEqual([]);
    // At the cap, it is read and verified.
    expect(
      (await verify(fakeRegistry({ signWith: key.privateKey, layers: 8 }), { limits: { layers: 8 } }))
        .allowed,
    ).toBe(true);
  });

  it("too many signature and attestation manifests: too_many_candidates, no referrer read", async () => {
    const fake = fakeRegistry({ signWith: key.privateKey, referrers: 4 });
    const report = await verify(fake, { limits: { candidates: 4 } });
    expect(report.checks[0]).toMatchObject({ name: "discovery", reason: "too_many_candidates" });
    expect(fake.requests.filter((r) => r.startsWith("blob") || r.startsWith("manifest sha256:"))).toEqual([
      `manifest ${fake.digest}`,
    ]);
  });

  it("too many platform manifests followed: too_many_platforms, no platform read", async () => {
    const fake = fakeRegistry({ signWith: key.privateKey, platforms: 3 });
    const report = await verify(fake, { limits: { platforms: 2 }, multiArch: true });
    expect(report.checks[0]).toMatchObject({ name: "discovery", reason: "too_many_platforms" });
    expect(fake.requests.filter((r) => r.startsWith("manifest"))).toEqual([`manifest ${fake.digest}`]);
  });

  it("more evidence bytes than the budget: evidence_too_large, no blob read", async () => {
    const fake = fakeRegistry({ signWith: key.privateKey, layers: 2 });
    const report = await verify(fake, { limits: { evidenceBytes: 2 * fake.payloadSize - 1 } });
    expect(report.checks[0]).toMatchObject({ name: "discovery", reason: "evidence_too_large" });
    expect(fake.requests.filter((r) => r.startsWith("blob"))).toEqual([]);
  });
});

describe("Ferry's own key (key: ferry) is bound to the signed repository's app", () => {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const reasonFor = async (signedFor: string, verifiedIn = "r.test/app") => {
    const fake = fakeRegistry({ signWith: key.privateKey, signedFor });
    const report = await serviceFor(fake.fetcher, key.publicKey).verify(
      `${verifiedIn}@${fake.digest}`,
      "prod",
    );
    return { allowed: report.allowed, reason: report.checks[0]?.details?.candidates?.[0]?.reason };
  };

  it("a repository of the same app: accepted", async () => {
    expect(await reasonFor("r.test/staging-app")).toEqual({ allowed: true, reason: "accepted" });
  });

  it("another app's repository, or one no app lists: repository_not_in_app", async () => {
    expect(await reasonFor("r.test/other")).toEqual({ allowed: false, reason: "repository_not_in_app" });
    expect(await reasonFor("r.test/unlisted")).toEqual({ allowed: false, reason: "repository_not_in_app" });
    expect(await reasonFor("r.test/app", "r.test/unlisted")).toEqual({
      allowed: false,
      reason: "repository_not_in_app",
    });
  });

  it("the same digest and signatures in two repositories are two decisions", async () => {
    const fake = fakeRegistry({ signWith: key.privateKey, signedFor: "r.test/other" });
    const service = serviceFor(fake.fetcher, key.publicKey);
    expect((await service.verify(`r.test/other@${fake.digest}`, "prod")).allowed).toBe(true);
    const copied = await service.verify(`r.test/app@${fake.digest}`, "prod");
    expect(copied).toMatchObject({ allowed: false, cached: false });
  });
});
