import { readFileSync } from "node:fs";
import path from "node:path";
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { StartupError } from "../common/startup-error.ts";
import { type ConfigProblem, configErrorMap, formatPath, problemsFromZod } from "./problems.ts";
import { configSchema, type FerryConfig } from "./schema.ts";
import { type SubstitutionProblem, substituteEnv } from "./substitute.ts";

/**
 * A config that could not be loaded, with every problem found (not just the first): the
 * {@link StartupError} of a config file, which it always names.
 */
export class ConfigError extends StartupError {
  declare readonly file: string;
  declare readonly problems: ConfigProblem[];
  /** The `${VAR}`s that were not set, and the config paths of the values that name them. */
  readonly unset: { variables: string[]; paths: string[] };

  constructor(
    file: string,
    problems: ConfigProblem[],
    unset = { variables: [] as string[], paths: [] as string[] },
  ) {
    super(problems, { file });
    this.name = "ConfigError";
    this.unset = unset;
  }
}

/** A loaded config: the parsed values plus where it came from. */
export interface LoadedConfig {
  config: FerryConfig & { server: FerryConfig["server"] & { publicUrl: string } };
  /** The folder of the config file; relative paths in it were resolved against this. */
  baseDir: string;
  file: string;
}

/**
 * Reads, substitutes and validates a config file. Relative paths (store.sqlite, keys.signing,
 * keys.previous, trust.trustedRoot, trust.authorities[].key and .keyless.trustedRoot, the
 * `oci-layout:` directories of apps[].images, issuers[].devKey) are resolved
 * against the file's folder.
 * Throws {@link ConfigError} listing every problem.
 */
export function loadConfigFile(
  file: string,
  env: Record<string, string | undefined> = process.env,
): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [
      {
        path: "",
        message:
          code === "ENOENT"
            ? "file not found (pass --config with the path of your ferry.yaml)"
            : `cannot read the file (${code ?? "error"})`,
      },
    ]);
  }
  return parseConfigText(text, file, env);
}

/** Like {@link loadConfigFile}, from text already read; `file` names it in messages and sets the base folder. */
export function parseConfigText(
  text: string,
  file: string,
  env: Record<string, string | undefined> = process.env,
): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return {
          path: pos ? `line ${pos.line}, column ${pos.col}` : "",
          message: `YAML: ${e.message.split("\n")[0]}`,
        };
      }),
    );
  }
  if (!isMap(doc.contents) && !(doc.contents === null) && !isSeq(doc.contents)) {
    throw new ConfigError(file, [{ path: "", message: "expected a YAML mapping at the top level" }]);
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: "", message: "expected a YAML mapping at the top level" }]);
  }

  const substitution: SubstitutionProblem[] = [];
  const substituted = substituteEnv(raw, env, substitution);
  const problems: ConfigProblem[] = substitution.map((p) => ({
    path: formatPath(p.path),
    message: p.message,
  }));

  const parsed = configSchema.safeParse(substituted, { error: configErrorMap });
  if (!parsed.success) {
    // A value that failed substitution is already reported; its knock-on schema error is noise.
    const substituted = new Set(problems.map((p) => p.path));
    problems.push(...problemsFromZod(parsed.error).filter((p) => !substituted.has(p.path)));
  }
  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(file, problems, {
      variables: [...new Set(substitution.map((p) => p.variable))],
      paths: substitution.map((p) => formatPath(p.path)),
    });
  }

  const baseDir = path.dirname(path.resolve(file));
  const config = resolvePaths(parsed.data, baseDir);
  const publicUrl =
    config.server.publicUrl ?? `http://${config.server.listen.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}`;
  return {
    config: { ...config, server: { ...config.server, publicUrl: publicUrl.replace(/\/+$/, "") } },
    baseDir,
    file: path.resolve(file),
  };
}

/** How apps[].images names an OCI image layout (the registry's `LAYOUT_PREFIX`; config does not import it). */
const LAYOUT_PREFIX = "oci-layout:";

function resolvePaths(config: FerryConfig, baseDir: string): FerryConfig {
  const abs = (p: string) => path.resolve(baseDir, p);
  const store =
    "sqlite" in config.store && config.store.sqlite !== ":memory:"
      ? { sqlite: abs(config.store.sqlite) }
      : config.store;
  const trustedRoot =
    config.trust.trustedRoot === undefined
      ? undefined
      : Array.isArray(config.trust.trustedRoot)
        ? config.trust.trustedRoot.map(abs)
        : abs(config.trust.trustedRoot);
  // An OCI layout named in apps[].images, like any file, is relative to the config file.
  const image = (ref: string) =>
    ref.startsWith(LAYOUT_PREFIX) ? `${LAYOUT_PREFIX}${abs(ref.slice(LAYOUT_PREFIX.length))}` : ref;
  return {
    ...config,
    store,
    apps: config.apps.map((a) => ({
      ...a,
      images: Object.fromEntries(Object.entries(a.images).map(([env, ref]) => [env, image(ref)])),
      ...(a.gitops === undefined
        ? {}
        : {
            gitops: Object.fromEntries(
              Object.entries(a.gitops).map(([env, t]) => [
                env,
                t.repo.startsWith("file://")
                  ? { ...t, repo: `file://${abs(t.repo.slice("file://".length))}` }
                  : t,
              ]),
            ),
          }),
    })),
    issuers: config.issuers.map((i) => (i.devKey === undefined ? i : { ...i, devKey: abs(i.devKey) })),
    keys: { ...config.keys, signing: abs(config.keys.signing), previous: config.keys.previous.map(abs) },
    trust: {
      ...config.trust,
      ...(trustedRoot === undefined ? {} : { trustedRoot }),
      authorities: config.trust.authorities.map((a) => {
        if (a.key !== undefined && a.key !== "ferry") return { ...a, key: abs(a.key) };
        // A root named by file resolves as `trust.trustedRoot` does, so the two still compare equal.
        const root = a.keyless?.trustedRoot;
        if (a.keyless && root !== undefined && root !== "public-good") {
          return { ...a, keyless: { ...a.keyless, trustedRoot: abs(root) } };
        }
        return a;
      }),
    },
  };
}
