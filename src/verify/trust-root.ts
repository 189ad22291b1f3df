import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { z } from "zod";

/** A Sigstore trusted root, loaded and named for reports. */
export interface LoadedTrustRoot {
  /** `public-good` or the file it came from. */
  name: string;
  root: TrustedRoot;
}

/** The outcome of loading trust roots: roots that loaded, and a problem when any did not. */
export interface TrustRoots {
  roots: LoadedTrustRoot[];
  /** Set when a configured root could not be loaded: keyless verification then fails closed. */
  problem?: string;
}

const seedsSchema = z.record(z.string(), z.object({ targets: z.record(z.string(), z.string()) }));

const PUBLIC_GOOD_MIRROR = "https://tuf-repo-cdn.sigstore.dev";

/**
 * The public-good trusted root pinned in `@sigstore/tuf`'s seeds (base64 under `targets`). Read
 * from the installed package, never fetched: verification does no network I/O.
 */
export function publicGoodRoot(): LoadedTrustRoot {
  const require = createRequire(import.meta.url);
  const seeds = seedsSchema.parse(require("@sigstore/tuf/seeds.json"));
  const encoded = seeds[PUBLIC_GOOD_MIRROR]?.targets["trusted_root.json"];
  if (encoded === undefined) throw new Error("@sigstore/tuf seeds hold no public-good trusted_root.json");
  return { name: "public-good", root: parseTrustedRoot(Buffer.from(encoded, "base64").toString("utf8")) };
}

/** Parses TrustedRoot JSON (any `…trustedroot+json;version=0.x`). */
export function parseTrustedRoot(text: string): TrustedRoot {
  const json: unknown = JSON.parse(text);
  const media = z.object({ mediaType: z.string().regex(/^application\/vnd\.dev\.sigstore\.trustedroot/) });
  media.parse(json);
  return TrustedRoot.fromJSON(json);
}

/**
 * Loads the configured roots: the files given, or the pinned public-good root when none are, plus
 * the public-good root beside the files when `publicGood` is true. A file that cannot be read is
 * recorded as a problem, not thrown, so that key-based verification keeps working while keyless
 * verification denies with `trust_root_unavailable`.
 */
export function loadTrustRoots(files: string[], publicGood: boolean | undefined): TrustRoots {
  const roots: LoadedTrustRoot[] = [];
  const problems: string[] = [];
  if (publicGood ?? files.length === 0) roots.push(publicGoodRoot());
  for (const file of files) {
    try {
      roots.push({ name: file, root: parseTrustedRoot(readFileSync(file, "utf8")) });
    } catch (err) {
      problems.push(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return {
    roots,
    ...(problems.length > 0 ? { problem: `trusted root not loaded (${problems.join("; ")})` } : {}),
  };
}

/**
 * The trusted roots the config names, as {@link loadTrustRoots} names them: `public-good` first
 * when it is trusted (by `publicGood`, or because no file is given), then the files.
 */
export function configuredRootNames(trust: {
  trustedRoot?: string | string[] | undefined;
  publicGood?: boolean | undefined;
}): {
  files: string[];
  names: string[];
} {
  const files =
    trust.trustedRoot === undefined
      ? []
      : Array.isArray(trust.trustedRoot)
        ? trust.trustedRoot
        : [trust.trustedRoot];
  const names = [...((trust.publicGood ?? files.length === 0) ? ["public-good"] : []), ...files];
  return { files, names };
}
