import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { FerryConfig } from "../config/schema.ts";

const run = promisify(execFile);

/** The file a dev gitops target starts with: what a team's deploy repository would hold. */
function initialContent(app: string, environment: string): string {
  return [
    `# Helm values of ${app} in ${environment}. Ferry writes the digest it promotes here.`,
    "image:",
    `  repository: ${app}`,
    '  digest: ""',
    "",
  ].join("\n");
}

/** git with no user or system config, and a fixed author: the same result on every machine. */
async function git(args: string[], cwd?: string): Promise<void> {
  await run("git", args, {
    ...(cwd === undefined ? {} : { cwd }),
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: tmpdir(),
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "Ferry dev seed",
      GIT_AUTHOR_EMAIL: "ferry@localhost",
      GIT_COMMITTER_NAME: "Ferry dev seed",
      GIT_COMMITTER_EMAIL: "ferry@localhost",
      LANG: "C",
    },
  });
}

/**
 * Creates the bare repository of every `file://` GitOps target that does not exist yet, with one
 * commit holding the target's file, so the first promotion has a branch and a file to edit.
 * Returns the repositories it created. Only dev configs have file:// targets (the schema says so).
 */
export async function ensureDevGitopsRepos(config: Pick<FerryConfig, "apps">): Promise<string[]> {
  const created: string[] = [];
  for (const app of config.apps) {
    for (const [environment, target] of Object.entries(app.gitops ?? {})) {
      if (!target.repo.startsWith("file://")) continue;
      const dir = target.repo.slice("file://".length);
      if (existsSync(dir)) continue;
      await mkdir(path.dirname(dir), { recursive: true });
      await git(["init", "--quiet", "--bare", `--initial-branch=${target.branch}`, dir]);
      const work = await mkdtemp(path.join(tmpdir(), "ferry-dev-gitops-"));
      try {
        await git(["init", "--quiet", `--initial-branch=${target.branch}`, work]);
        const file = path.join(work, target.path);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, initialContent(app.name, environment));
        await git(["add", "--", target.path], work);
        await git(["commit", "--quiet", "-m", `${app.name}: ${environment} before any promotion`], work);
        await git(["push", "--quiet", dir, `HEAD:refs/heads/${target.branch}`], work);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
      created.push(dir);
    }
  }
  return created;
}
