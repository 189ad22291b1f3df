// Restores package-lock.json entries for optional, platform-specific packages that npm leaves out
// when the registry it talks to lacks them (seen with @biomejs/cli-* for other platforms). Without
// those entries `npm ci` refuses the lockfile as out of sync on every machine, including CI and the
// container build. Entries are derived from the parent package's optionalDependencies and the
// platform package's own os/cpu/libc fields. Run after `npm install` changes the lockfile:
//   node scripts/complete-lockfile.ts
import { readFileSync, writeFileSync } from "node:fs";

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  license?: string;
  engines?: Record<string, string>;
}

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8")) as { packages: Record<string, LockEntry> };
const platform = (name: string): Pick<LockEntry, "os" | "cpu" | "libc"> => {
  const [, os, cpu, libc] =
    /-(linux|darwin|win32|android|freebsd)-(x64|arm64|arm|ia32)(?:-(musl))?$/.exec(name) ?? [];
  if (!os || !cpu) return {};
  return { os: [os], cpu: [cpu], ...(os === "linux" ? { libc: [libc === "musl" ? "musl" : "glibc"] } : {}) };
};

let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key] || lock.packages[`${path}/${key}`]) continue;
    lock.packages[key] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      ...platform(dep),
      ...(entry.license ? { license: entry.license } : {}),
    };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)),
);
writeFileSync(file, `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
process.stdout.write(
  `package-lock.json: added ${added} optional platform entr${added === 1 ? "y" : "ies"}\n`,
);
