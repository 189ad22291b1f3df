import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { generateSigningKeyPem, KeyError, parseSigningKey, type SigningKey } from "../signing/keys.ts";

/**
 * Loads a dev issuer's key (`issuers[].devKey`), generating it when the file does not exist: the
 * server on its first start and `ferry dev token` may each be first, and both end up with the same
 * key because the file is created exclusively (a loser of the race reads the winner's key).
 * `configPath` names the option in errors (`issuers[0].devKey`).
 */
export function loadDevIssuerKey(file: string, configPath: string): { key: SigningKey; generated: boolean } {
  let generated = false;
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, generateSigningKeyPem(), { mode: 0o600, flag: "wx" });
    generated = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new KeyError(
        configPath,
        `cannot create ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        {
          cause: err,
        },
      );
    }
  }
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new KeyError(configPath, `cannot read ${file} (${code})`, { cause: err });
  }
  return { key: parseSigningKey(pem, file, configPath), generated };
}
