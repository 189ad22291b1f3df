import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { bundleFromJSON } from "@sigstore/bundle";
import type { Command } from "commander";
import { compileAuthorities } from "../verify/authorities.ts";
import type { ReadableCandidate } from "../verify/candidate.ts";
import { bestRefusal, verifyCandidate } from "../verify/entity.ts";
import { signedContent, statementCovers } from "../verify/statement.ts";
import { buildTrustContext } from "../verify/trust-context.ts";
import { loadTrustRoots, publicGoodRoot } from "../verify/trust-root.ts";
import { CliError, type CliIo, Denied } from "./io.ts";

interface Opts {
  bundle: string;
  certificateIdentity?: string;
  certificateOidcIssuer?: string;
  key?: string;
  trustedRoot?: string;
  staging?: boolean;
}

/**
 * Registers `ferry verify-bundle`: the sigstore-conformance client protocol's verify-bundle flow,
 * so the verification core can be run against that suite. The artifact is a file, or
 * `sha256:<hex>` (DSSE bundles only: a message signature needs the signed bytes).
 */
export function registerVerifyBundle(program: Command, io: CliIo): void {
  program
    .command("verify-bundle")
    .description("verify a Sigstore bundle over an artifact (sigstore-conformance protocol)")
    .argument("<artifact>", "the artifact file, or sha256:<hex>")
    .requiredOption("--bundle <file>", "the Sigstore bundle (v0.1–v0.3)")
    .option("--certificate-identity <san>", "the exact certificate SAN")
    .option("--certificate-oidc-issuer <url>", "the exact OIDC issuer")
    .option("--key <file>", "a PEM public key, instead of a certificate identity")
    .option("--trusted-root <file>", "TrustedRoot JSON (default: the pinned public-good root)")
    .option("--staging", "use the staging instance (needs --trusted-root: Ferry fetches nothing)")
    .action((artifact: string, opts: Opts) => {
      if (opts.staging && !opts.trustedRoot) {
        throw new CliError(
          "--staging needs --trusted-root: Ferry does not fetch trust material over the network",
        );
      }
      const roots = opts.trustedRoot
        ? loadTrustRoots([opts.trustedRoot], false)
        : { roots: [publicGoodRoot()] };
      if ("problem" in roots && roots.problem) throw new CliError(roots.problem);
      let authority: Parameters<typeof compileAuthorities>[0][number];
      if (opts.key) authority = { name: "key", key: opts.key };
      else if (opts.certificateIdentity && opts.certificateOidcIssuer) {
        authority = {
          name: "identity",
          keyless: { issuer: opts.certificateOidcIssuer, subject: opts.certificateIdentity },
        };
      } else throw new CliError("give --key, or --certificate-identity and --certificate-oidc-issuer");
      const ctx = buildTrustContext(compileAuthorities([authority], undefined), roots);

      const bundle = bundleFromJSON(JSON.parse(readFileSync(opts.bundle, "utf8")));
      const isDigest = /^sha256:[0-9a-f]{64}$/.test(artifact);
      const bytes = isDigest ? undefined : readFileSync(artifact);
      const digest = isDigest ? artifact : `sha256:${createHash("sha256").update(bytes!).digest("hex")}`;
      if (bundle.content.$case === "messageSignature" && !bytes) {
        throw new CliError("a message-signature bundle needs the artifact file, not its digest");
      }
      const candidate: ReadableCandidate = {
        readable: true,
        format: "sigstore-bundle",
        source: opts.bundle,
        digest,
        bundle,
        ...(bytes ? { artifact: bytes } : {}),
      };
      const verdict = verifyCandidate(candidate, [authority.name], ctx);
      if (verdict.vouches.length === 0) {
        const why = bestRefusal(verdict.refusals);
        io.err(`ferry: bundle not verified: ${why?.reason ?? "untrusted"}: ${why?.message ?? ""}\n`);
        throw new Denied("bundle not verified");
      }
      const content = signedContent(candidate);
      if (content.kind === "statement" && !statementCovers(content.statement, digest)) {
        io.err(`ferry: bundle not verified: subject_mismatch: the statement is not about ${digest}\n`);
        throw new Denied("subject mismatch");
      }
      if (content.kind === "unreadable") {
        io.err(`ferry: bundle not verified: unreadable: ${content.message}\n`);
        throw new Denied("unreadable");
      }
      io.out(`verified ${digest}\n`);
    });
}
