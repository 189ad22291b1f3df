import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fingerprint } from "../common/logger.ts";
import { StartupError } from "../common/startup-error.ts";

/** Ferry's signing key pair, loaded and checked. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SHA-256 of the DER SubjectPublicKeyInfo, hex: names the key in logs and records. */
  id: string;
  publicKeyPem: string;
}

/**
 * A signing key that is missing or unusable, at its config path (`keys.signing`; empty for a file
 * named on the command line); the message says how to fix it.
 */
export class KeyError extends StartupError {
  constructor(path: string, message: string, options: { cause?: unknown } = {}) {
    super([{ path, message }], options);
    this.name = "KeyError";
  }
}

/** Generates an ECDSA P-256 private key as PKCS#8 PEM. */
export function generateSigningKeyPem(): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

/** Writes a new key to `file` (mode 0600), refusing to overwrite unless `force`. */
export function writeSigningKey(file: string, options: { force?: boolean } = {}): SigningKey {
  if (existsSync(file) && !options.force) {
    throw new KeyError(
      "",
      `${file} already exists; pass --force to replace it (tokens and signatures made with it stop verifying)`,
    );
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const pem = generateSigningKeyPem();
  writeFileSync(file, pem, { mode: 0o600 });
  chmodSync(file, 0o600);
  return parseSigningKey(pem, file);
}

/**
 * Parses and checks a PKCS#8 PEM: it must be an ECDSA P-256 private key. `configPath` is where the
 * config names it, for the {@link KeyError}.
 */
export function parseSigningKey(pem: string, source: string, configPath = "keys.signing"): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: "pem" });
  } catch (err) {
    throw new KeyError(
      configPath,
      `${source}: not a PEM private key (${(err as Error).message}); create one with \`ferry keys generate --out ${source}\``,
      { cause: err },
    );
  }
  if (privateKey.asymmetricKeyType !== "ec" || privateKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new KeyError(
      configPath,
      `${source}: expected an ECDSA P-256 key, got ${privateKey.asymmetricKeyType ?? "unknown"} ${privateKey.asymmetricKeyDetails?.namedCurve ?? ""}`.trim(),
    );
  }
  const publicKey = createPublicKey(privateKey);
  const der = publicKey.export({ format: "der", type: "spki" });
  return {
    privateKey,
    publicKey,
    id: fingerprint(der),
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
  };
}

/**
 * Loads Ferry's signing key. A missing file is generated only in dev mode; in any other mode it
 * is an error, so production never silently signs with a key nobody provisioned.
 */
export function loadSigningKey(file: string, dev: boolean): { key: SigningKey; generated: boolean } {
  if (!existsSync(file)) {
    if (!dev) {
      throw new KeyError(
        "keys.signing",
        `${file} does not exist; create it with \`ferry keys generate --out ${file}\``,
      );
    }
    return { key: writeSigningKey(file), generated: true };
  }
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new KeyError("keys.signing", `cannot read ${file} (${code})`, { cause: err });
  }
  return { key: parseSigningKey(pem, file), generated: false };
}
