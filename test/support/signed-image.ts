import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { attest, type CosignKeyPair, generateKeyPair, sign } from "./cosign.ts";
import { type BuildImageOptions, type BuiltImage, buildImageLayout, pushImage } from "./images.ts";
import type { TestRegistry } from "./registry.ts";

/** The predicate type of the legacy `.att` attestation {@link pushSignedImage} makes. */
export const LEGACY_PREDICATE_TYPE = "https://ferry.test/provenance/v1";
/** The predicate type of the Sigstore-bundle attestation (stored as a referrer) it makes. */
export const BUNDLE_PREDICATE_TYPE = "https://ferry.test/sbom/v1";

/** An image in a test registry with a cosign signature and two attestations. */
export interface SignedImage {
  image: BuiltImage;
  digest: string;
  /** `host/repo@digest` */
  ref: string;
  keys: CosignKeyPair;
}

/** Options for {@link pushSignedImage}. */
export interface PushSignedOptions extends BuildImageOptions {
  /** Reuse a key pair (else one is generated in `work`). */
  keys?: CosignKeyPair;
  /** Also attest in the Sigstore bundle format (a referrer, or the fallback index) — default true. */
  bundle?: boolean;
}

function check(what: string, res: { code: number; stderr: string }): void {
  if (res.code !== 0) throw new Error(`${what} failed (${res.code}): ${res.stderr.trim()}`);
}

/**
 * Builds an image, pushes it with skopeo to `registry` as `repo:v1`, and with cosign signs it (legacy
 * `.sig` tag), attests it in the legacy format (`.att` tag, {@link LEGACY_PREDICATE_TYPE}) and, unless
 * `bundle` is false, as a Sigstore bundle referrer ({@link BUNDLE_PREDICATE_TYPE}).
 */
export async function pushSignedImage(
  registry: TestRegistry,
  repo: string,
  work: string,
  opts: PushSignedOptions = {},
): Promise<SignedImage> {
  const dir = join(work, `${repo.replaceAll("/", "-")}-${Math.random().toString(36).slice(2, 8)}`);
  const image = await buildImageLayout(join(dir, "layout"), opts);
  const digest = await pushImage(image.dir, registry, `${repo}:v1`);
  const ref = `${registry.host}/${repo}@${digest}`;
  const keys = opts.keys ?? (await generateKeyPair(join(dir, "keys")));
  const registryAuth =
    registry.username === undefined
      ? undefined
      : { username: registry.username, password: registry.password! };
  const predicate = join(dir, "predicate.json");
  await writeFile(predicate, JSON.stringify({ builder: { id: "https://ferry.test/builder" } }));
  check("cosign sign", await sign(ref, keys.privateKeyPath, { registryAuth }));
  check(
    "cosign attest",
    await attest(ref, keys.privateKeyPath, predicate, LEGACY_PREDICATE_TYPE, { registryAuth }),
  );
  if (opts.bundle !== false) {
    check(
      "cosign attest --new-bundle-format",
      await attest(ref, keys.privateKeyPath, predicate, BUNDLE_PREDICATE_TYPE, {
        registryAuth,
        newBundleFormat: true,
      }),
    );
  }
  return { image, digest, ref, keys };
}
