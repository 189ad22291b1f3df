import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { anchoredRegExp } from "../common/patterns.ts";
import { StartupError } from "../common/startup-error.ts";

/** Certificate extensions a keyless authority may constrain (Fulcio's OIDs). */
export const EXTENSION_OIDS = {
  issuer: "1.3.6.1.4.1.57264.1.8",
  buildSignerUri: "1.3.6.1.4.1.57264.1.9",
  runnerEnvironment: "1.3.6.1.4.1.57264.1.11",
  sourceRepositoryUri: "1.3.6.1.4.1.57264.1.12",
  sourceRepositoryRef: "1.3.6.1.4.1.57264.1.14",
  sourceRepositoryIdentifier: "1.3.6.1.4.1.57264.1.15",
} as const;
export type ExtensionName = keyof typeof EXTENSION_OIDS;

/** A key authority: a public key, or Ferry's own. */
export interface KeyAuthority {
  kind: "key";
  name: string;
  key: KeyObject;
  /**
   * Set for `key: ferry`: Ferry signs for every app with one key, so its signatures count only in a
   * repository of the app whose repository they name (`binding.ts`).
   */
  bindsApp?: true;
  /** The `verifier.id` its SLSA verification summaries carry (`trust.authorities[].verifierId`). */
  verifierId?: string;
}

/** A keyless authority: a certificate identity. */
export interface KeylessAuthority {
  kind: "keyless";
  name: string;
  issuer: string;
  /** The subject as written in config, for messages. */
  subjectText: string;
  /** Matches the whole SAN: an exact string, or the configured regex anchored `^(?:…)$`. */
  matchesSubject: (san: string) => boolean;
  extensions: Partial<Record<Exclude<ExtensionName, "issuer">, string>>;
  /**
   * The one trusted root (`public-good` or a `trust.trustedRoot` file) whose CAs may issue this
   * signer's certificates; a certificate that chains only to another root does not satisfy it.
   * Undefined only outside config (a single-root context, e.g. `verify-bundle`): the context's one root.
   */
  root?: string;
  /** The `verifier.id` its SLSA verification summaries carry (`trust.authorities[].verifierId`). */
  verifierId?: string;
}

/** A trusted signer, compiled once from config. */
export type Authority = KeyAuthority | KeylessAuthority;

/** An authority as written in `trust.authorities` (after config parsing). */
export interface AuthorityConfig {
  name: string;
  key?: string;
  verifierId?: string;
  keyless?: {
    issuer: string;
    subject?: string;
    subjectRegex?: string;
    extensions?: Partial<Record<Exclude<ExtensionName, "issuer">, string>>;
    /** `public-good` or one of the `trust.trustedRoot` files (resolved like them). */
    trustedRoot?: string;
  };
}

const SUPPORTED_KEYS = "ECDSA P-256 or P-384, Ed25519, or RSA (2048 bits or more)";

/** Parses a PEM public key and checks that it is a type Ferry verifies with. */
export function parsePublicKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (err) {
    throw new Error(`${source}: not a PEM public key`, { cause: err });
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const ok =
    (type === "ec" && (curve === "prime256v1" || curve === "secp384r1")) ||
    type === "ed25519" ||
    (type === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048);
  if (!ok)
    throw new Error(`${source}: unsupported key ${type ?? "?"} ${curve ?? ""}; expected ${SUPPORTED_KEYS}`);
  return key;
}

/** Reads and parses a public key file; a {@link StartupError} names the config path and the file. */
function readPublicKey(file: string, configPath: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new StartupError(
      [
        {
          path: configPath,
          message: `cannot read ${file} (${code}); point it at the signer's PEM public key`,
        },
      ],
      { cause: err },
    );
  }
  try {
    return parsePublicKey(pem, file);
  } catch (err) {
    throw new StartupError([{ path: configPath, message: (err as Error).message }], { cause: err });
  }
}

/**
 * The root a keyless authority trusts: the one it names, else the only one configured. With
 * several roots an authority must name one (the config schema says so with its path): any root's
 * CA vouching for any identity would let one CA (a private one, say) issue another's identities.
 */
function authorityRoot(
  configured: string | undefined,
  roots: readonly string[] | undefined,
  path: string,
): string | undefined {
  if (roots === undefined) return configured;
  if (configured !== undefined) {
    if (!roots.includes(configured)) {
      throw new StartupError([
        { path, message: `unknown trusted root ${configured} (configured: ${roots.join(", ")})` },
      ]);
    }
    return configured;
  }
  if (roots.length === 1) return roots[0];
  throw new StartupError([
    { path, message: "several trusted roots are configured; name the one that issues this signer" },
  ]);
}

/** The verifier id, without trailing slashes (a summary's `verifier.id` is compared the same way). */
function verifier(a: AuthorityConfig): { verifierId?: string } {
  return a.verifierId === undefined ? {} : { verifierId: a.verifierId.replace(/\/+$/, "") };
}

/**
 * Compiles `trust.authorities`. `ferryKey` is the public half of `keys.signing`, used for
 * `key: ferry`. Regexes are anchored here, once: an unanchored pattern would let a longer SAN
 * (an attacker's repository whose URL contains the trusted one) satisfy it. `roots` names the
 * configured trusted roots (`public-good` or file paths), to pin each keyless authority to one.
 */
export function compileAuthorities(
  configs: AuthorityConfig[],
  ferryKey: KeyObject | undefined,
  roots?: readonly string[],
): Map<string, Authority> {
  const out = new Map<string, Authority>();
  for (const [i, a] of configs.entries()) {
    if (a.key !== undefined) {
      if (a.key === "ferry") {
        if (!ferryKey) {
          throw new StartupError([
            { path: `trust.authorities[${i}].key`, message: "key ferry needs keys.signing" },
          ]);
        }
        out.set(a.name, { kind: "key", name: a.name, key: ferryKey, bindsApp: true, ...verifier(a) });
      } else {
        out.set(a.name, {
          kind: "key",
          name: a.name,
          key: readPublicKey(a.key, `trust.authorities[${i}].key`),
          ...verifier(a),
        });
      }
      continue;
    }
    const k = a.keyless;
    if (!k) throw new StartupError([{ path: `trust.authorities[${i}]`, message: "needs key or keyless" }]);
    let matchesSubject: (san: string) => boolean;
    if (k.subjectRegex !== undefined) {
      const re = anchoredRegExp(k.subjectRegex);
      matchesSubject = (san) => re.test(san);
    } else {
      const exact = k.subject ?? "";
      matchesSubject = (san) => san === exact;
    }
    const root = authorityRoot(k.trustedRoot, roots, `trust.authorities[${i}].keyless.trustedRoot`);
    out.set(a.name, {
      kind: "keyless",
      name: a.name,
      issuer: k.issuer,
      subjectText: k.subject ?? `/${k.subjectRegex}/ (anchored)`,
      matchesSubject,
      extensions: { ...(k.extensions ?? {}) },
      ...(root !== undefined ? { root } : {}),
      ...verifier(a),
    });
  }
  return out;
}
