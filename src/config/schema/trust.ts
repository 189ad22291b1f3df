/** What Ferry trusts when it verifies: roots, signing authorities, limits, and who may ask. */
import { z } from "zod";
import { duration } from "../duration.ts";
import { anchoredPattern, d, httpUrl, name, positiveInt } from "./base.ts";

const authority = z
  .strictObject({
    name,
    keyless: z
      .strictObject({
        issuer: z.string().min(1).meta(d("The OIDC issuer in the certificate, matched exactly.")),
        subject: z.string().min(1).optional().meta(d("The certificate's subject (SAN), matched exactly.")),
        subjectRegex: anchoredPattern
          .optional()
          .meta(d("An anchored regex for the subject, instead of `subject` (matched as `^(?:…)$`).")),
        extensions: z
          .strictObject({
            sourceRepositoryUri: z.string().min(1).optional().meta(d("Fulcio 1.3.6.1.4.1.57264.1.12.")),
            sourceRepositoryIdentifier: z
              .string()
              .regex(/^\d+$/, "expected the repository's numeric id")
              .optional()
              .meta(
                d("The repository's immutable numeric id (Fulcio 1.3.6.1.4.1.57264.1.15); survives renames."),
              ),
            sourceRepositoryRef: z
              .string()
              .min(1)
              .optional()
              .meta(d("e.g. `refs/heads/main` (Fulcio 1.3.6.1.4.1.57264.1.14).")),
            buildSignerUri: z
              .string()
              .min(1)
              .optional()
              .meta(d("The workflow that signed (Fulcio 1.3.6.1.4.1.57264.1.9).")),
            runnerEnvironment: z
              .string()
              .min(1)
              .optional()
              .meta(d("e.g. `github-hosted` (Fulcio 1.3.6.1.4.1.57264.1.11).")),
          })
          .optional()
          .meta(d("Certificate extensions that must equal these values exactly.")),
        trustedRoot: z
          .string()
          .min(1)
          .optional()
          .meta(
            d(
              "The trusted root whose CAs issue this signer's certificates: `public-good` or one of the `trust.trustedRoot` files, written the same way. A certificate chaining to another root does not satisfy this authority. Default: the only root when one is configured; required when several are.",
            ),
          ),
      })
      .optional()
      .meta(d("Keyless (Fulcio certificate) signer identity.")),
    key: z
      .string()
      .min(1)
      .optional()
      .meta(d("A public key PEM file, or the word `ferry` for Ferry's own signing key.")),
    verifierId: httpUrl
      .optional()
      .meta(
        d(
          "The `verifier.id` this signer writes in SLSA verification summaries: another Ferry's `server.publicUrl` (docs/evidence.md). Needed by an authority that `environments[].require.summary.verifier` names; a summary by this key that claims another verifier is refused.",
        ),
      ),
  })
  .refine((a) => (a.keyless === undefined) !== (a.key === undefined), {
    message: "an authority has exactly one of `keyless` or `key`",
  })
  .refine((a) => !a.keyless || (a.keyless.subject === undefined) !== (a.keyless.subjectRegex === undefined), {
    message: "a keyless authority has exactly one of `subject` or `subjectRegex`",
    path: ["keyless"],
  });

// Each cap is decided from what a manifest declares, before the objects it names are read; the
// defaults leave room for real images (cosign appends a layer per signer and per `attest` run) while
// bounding one verification's reads at `evidenceBytes` and the shared cache at `cacheBytes`.
const verificationLimits = z
  .strictObject({
    candidates: positiveInt
      .default(32)
      .meta(
        d(
          "Most signature and attestation manifests (the `.sig` and `.att` tags, each referrer) read for one digest; more denies with `too_many_candidates` before any is read.",
        ),
      ),
    layers: positiveInt
      .default(16)
      .meta(
        d(
          "Most signature, attestation or bundle layers read from one such manifest; more denies with `too_many_layers` before any is read.",
        ),
      ),
    platforms: positiveInt
      .default(64)
      .meta(
        d(
          "Most platform manifests of an image index followed for `multiArch: index-and-platforms`; more denies with `too_many_platforms`.",
        ),
      ),
    evidenceBytes: positiveInt
      .default(64 * 1024 * 1024)
      .meta(
        d(
          "Most bytes of signature, attestation and bundle blobs (by their declared sizes) one verification reads; more denies with `evidence_too_large` before they are read.",
        ),
      ),
    cacheBytes: positiveInt
      .default(64 * 1024 * 1024)
      .meta(
        d(
          "Byte budget of the cache of registry objects shared by all verifications (three quarters blobs, one quarter manifests); the least recently used go first, and an object over a quarter of its share is not cached.",
        ),
      ),
  })
  .prefault({})
  .meta(d("What one verification may read, and how much the verification cache may hold."));

export const authorityRefs = z
  .array(name)
  .min(1)
  .meta(d("Names of `trust.authorities`; any one of them suffices."));

/** `verification`: who may call `POST /v1/verifications`, and how often. */
export const verificationSection = z
  .strictObject({
    readers: z
      .array(z.string().min(1))
      .default([])
      .meta(
        d(
          "Groups (of human issuers' `groupsClaim`) whose members may call `POST /v1/verifications` and read every app's promotions and environments; empty: no person may (besides promoters and approvers, who read their own apps). Pipelines need no entry: see docs/identity.md and docs/promotion.md.",
        ),
      ),
    rateLimit: z
      .strictObject({
        requests: positiveInt
          .default(60)
          .meta(d("Verifications allowed per identity (issuer, `sub`) per `per`.")),
        per: duration.prefault("1m").meta(d("The window; the budget refills evenly over it.")),
      })
      .prefault({})
      .meta(d("Per-identity rate limit of `POST /v1/verifications` (429 with Retry-After beyond it).")),
  })
  .prefault({})
  .meta(d("Who besides the image's own pipelines may verify (`POST /v1/verifications`), and how often."));

/** `trust`: roots, authorities, timeouts and limits of verification. */
export const trustSection = z
  .strictObject({
    trustedRoot: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .meta(d("Sigstore TrustedRoot JSON file(s). Default: the pinned public-good root.")),
    publicGood: z
      .boolean()
      .optional()
      .meta(
        d(
          "Also trust the pinned public-good root beside `trustedRoot` files. Default: true when no `trustedRoot` is given, false otherwise.",
        ),
      ),
    authorities: z
      .array(authority)
      .default([])
      .meta(d("Signers whose signatures and attestations Ferry trusts.")),
    timeout: duration
      .prefault("30s")
      .meta(d("A verification that takes longer is denied (reason `timeout`).")),
    cacheTtl: duration
      .prefault("5m")
      .meta(
        d(
          "How long a decision is reused for the same digest, policy and set of signatures and attestations.",
        ),
      ),
    limits: verificationLimits,
    builders: z
      .record(z.string().min(1), z.int().min(0).max(3))
      .default({})
      .meta(
        d(
          "SLSA build level (0-3, the SLSA 1.0 build track) per provenance builder id: a verification summary claims `SLSA_BUILD_LEVEL_n` only for a provenance the environment required and accepted, from a builder listed here (docs/evidence.md). Unlisted builders: no level is claimed.",
        ),
      ),
  })
  .prefault({})
  .meta(d("What Ferry trusts when it verifies artifacts."));
