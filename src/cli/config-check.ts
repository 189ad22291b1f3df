import { existsSync, readFileSync } from "node:fs";
import { isStartupError } from "../common/startup-error.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { ConfigProblem } from "../config/problems.ts";
import { publicKeyFromPem } from "../credentials/keyset.ts";
import { parseSigningKey } from "../signing/keys.ts";
import { parsePublicKey } from "../verify/authorities.ts";
import { loadTrustRoots } from "../verify/trust-root.ts";

/**
 * Beyond the schema: the files a config names must be usable, so that `ferry config check` passing
 * means `ferry serve` starts. Checks the signing key (unless dev mode will generate it), previous
 * keys, authority public keys and trusted roots, each reported with its config path.
 */
export function checkReferencedFiles(loaded: LoadedConfig): ConfigProblem[] {
  const { config } = loaded;
  const problems: ConfigProblem[] = [];
  const signing = config.keys.signing;
  if (existsSync(signing)) {
    try {
      parseSigningKey(readFileSync(signing, "utf8"), signing, "keys.signing");
    } catch (err) {
      // The key's own problems carry their path; an unreadable file is a plain fs error.
      if (isStartupError(err)) problems.push(...err.problems);
      else problems.push({ path: "keys.signing", message: (err as Error).message });
    }
  } else if (!config.dev) {
    problems.push({
      path: "keys.signing",
      message: `${signing} does not exist; create it with \`ferry keys generate --out ${signing}\``,
    });
  }
  config.keys.previous.forEach((file, i) => {
    let pem: string;
    try {
      pem = readFileSync(file, "utf8");
    } catch (err) {
      problems.push({
        path: `keys.previous[${i}]`,
        message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      });
      return;
    }
    try {
      publicKeyFromPem(pem, file);
    } catch (err) {
      problems.push({ path: `keys.previous[${i}]`, message: (err as Error).message });
    }
  });
  config.trust.authorities.forEach((authority, i) => {
    if (authority.key === undefined || authority.key === "ferry") return;
    const where = `trust.authorities[${i}].key`;
    let pem: string;
    try {
      pem = readFileSync(authority.key, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      problems.push({
        path: where,
        message: `cannot read ${authority.key} (${code}); point it at the signer's PEM public key`,
      });
      return;
    }
    try {
      parsePublicKey(pem, authority.key);
    } catch (err) {
      problems.push({ path: where, message: (err as Error).message });
    }
  });
  const roots = config.trust.trustedRoot;
  const files = roots === undefined ? [] : Array.isArray(roots) ? roots : [roots];
  const loadedRoots = loadTrustRoots(files, config.trust.publicGood);
  if (loadedRoots.problem) problems.push({ path: "trust.trustedRoot", message: loadedRoots.problem });
  return problems;
}
