// Lint of the Dockerfile (no Docker engine here, so the image is never built in tests):
// dockerfile-utils' validator for syntax, plus our own rules for what a Ferry image must be.

import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { validate } from "dockerfile-utils";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { repoRoot } from "../support/helm.ts";

// ---------------------------------------------------------------------------------------------
// A small Dockerfile parser: parser directives, comments, line continuations, stages, flags.
// ---------------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  /** Arguments after the keyword, continuation lines joined. */
  args: string;
  /** 1-based line of the keyword. */
  line: number;
}

interface Stage {
  from: Instruction;
  /** Base image with global ARGs substituted. */
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

interface ParsedDockerfile {
  globalArgs: Map<string, string>;
  stages: Stage[];
}

function parseDockerfile(text: string): ParsedDockerfile {
  const lines = text.split(/\r?\n/);
  let escapeChar = "\\";
  let index = 0;
  // Parser directives: "# name=value" lines at the very top.
  for (; index < lines.length; index++) {
    const directive = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[index] ?? "");
    if (!directive) break;
    if (directive[1]?.toLowerCase() === "escape") escapeChar = directive[2] ?? escapeChar;
  }

  const instructions: Instruction[] = [];
  let buffer: string[] = [];
  let start = 0;
  for (; index < lines.length; index++) {
    const raw = lines[index] ?? "";
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue; // comments and blank lines, also inside continuations
    if (buffer.length === 0) start = index + 1;
    const continued = raw.trimEnd().endsWith(escapeChar);
    buffer.push(continued ? raw.trimEnd().slice(0, -escapeChar.length) : raw);
    if (continued) continue;
    const joined = buffer.join(" ").trim();
    buffer = [];
    const match = /^(\S+)\s*([\s\S]*)$/.exec(joined);
    if (match)
      instructions.push({ keyword: (match[1] ?? "").toUpperCase(), args: match[2] ?? "", line: start });
  }
  if (buffer.length > 0) {
    const joined = buffer.join(" ").trim();
    const match = /^(\S+)\s*([\s\S]*)$/.exec(joined);
    if (match)
      instructions.push({ keyword: (match[1] ?? "").toUpperCase(), args: match[2] ?? "", line: start });
  }

  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const { rest } = splitFlags(instruction.args);
      const words = rest.split(/\s+/).filter(Boolean);
      const image = substitute(words[0] ?? "", globalArgs);
      const name = words[1]?.toUpperCase() === "AS" ? words[2] : undefined;
      stages.push({ from: instruction, image, name, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword === "ARG") {
        const [name, ...value] = instruction.args.trim().split("=");
        if (name) globalArgs.set(name.trim(), unquote(value.join("=").trim()));
      }
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

function unquote(value: string): string {
  return /^(["']).*\1$/.test(value) ? value.slice(1, -1) : value;
}

/** ${NAME}, ${NAME:-default}, $NAME from the given variables; unknown ones become "". */
function substitute(value: string, vars: Map<string, string>): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, braced: string | undefined, fallback: string | undefined, bare: string | undefined) =>
      vars.get(braced ?? bare ?? "") || fallback || "",
  );
}

/** Leading --flag[=value] words of an instruction's arguments. */
function splitFlags(args: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = args.trim();
  for (
    let m = /^--([a-zA-Z-]+)(?:=(\S*))?\s*/.exec(rest);
    m;
    m = /^--([a-zA-Z-]+)(?:=(\S*))?\s*/.exec(rest)
  ) {
    flags.set(m[1] ?? "", m[2] ?? "");
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/** Exec-form (JSON array) arguments, or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  const text = args.trim();
  if (!text.startsWith("[")) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) && value.every((v) => typeof v === "string") ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Source and destination words of a COPY/ADD (either form), flags excluded. */
function copyOperands(args: string): { flags: Map<string, string>; sources: string[]; dest: string } {
  const { flags, rest } = splitFlags(args);
  const words = execForm(rest) ?? rest.split(/\s+/).filter(Boolean);
  return { flags, sources: words.slice(0, -1), dest: words.at(-1) ?? "" };
}

// ---------------------------------------------------------------------------------------------
// Our rules.
// ---------------------------------------------------------------------------------------------

type Rule =
  | "no-stage"
  | "base-not-node-24"
  | "base-unpinned"
  | "user-not-numeric-nonroot"
  | "healthcheck-missing"
  | "healthcheck-not-node"
  | "add-url"
  | "npm-ci-omit-dev-missing"
  | "npm-install-in-final"
  | "copy-context-root"
  | "git-tools-missing"
  | "home-not-writable";

interface Problem {
  rule: Rule;
  line: number;
  message: string;
}

function lintDockerfile(text: string): Problem[] {
  const { stages } = parseDockerfile(text);
  const problems: Problem[] = [];
  const report = (rule: Rule, line: number, message: string) => problems.push({ rule, line, message });
  const final = stages.at(-1);
  if (!final) {
    report("no-stage", 1, "no FROM instruction");
    return problems;
  }

  // Every base image: node, major 24, a pinned tag (not latest, not missing).
  const stageNames = new Set<string>();
  for (const stage of stages) {
    const line = stage.from.line;
    if (stageNames.has(stage.image.toLowerCase())) {
      // FROM an earlier stage: its own base was checked.
    } else {
      const [reference, digest] = stage.image.split("@");
      const slash = reference?.lastIndexOf("/") ?? -1;
      const colon = reference?.lastIndexOf(":") ?? -1;
      const hasTag = colon > slash;
      const repository = hasTag ? reference?.slice(0, colon) : reference;
      const tag = hasTag ? reference?.slice(colon + 1) : undefined;
      const name = repository?.split("/").at(-1);
      if (!tag || tag === "latest") {
        report(
          "base-unpinned",
          line,
          `FROM ${stage.image}: pin a tag (not "latest"${digest ? "" : ", or no tag"})`,
        );
      }
      if (name !== "node" || !tag || !/^24(?:[.-]|$)/.test(tag)) {
        report("base-not-node-24", line, `FROM ${stage.image}: the base must be the node image, major 24`);
      }
    }
    if (stage.name) stageNames.add(stage.name.toLowerCase());
  }

  // Final stage: a numeric, non-root USER (the last one wins).
  const user = final.instructions.filter((i) => i.keyword === "USER").at(-1);
  const uid = user ? /^(\d+)(?::(\d+))?$/.exec(user.args.trim()) : null;
  if (!user || !uid || Number(uid[1]) === 0) {
    report(
      "user-not-numeric-nonroot",
      user?.line ?? final.from.line,
      `final stage must end with a numeric non-root USER (UID[:GID]), found ${user ? `"USER ${user.args}"` : "none"}`,
    );
  }

  // Final stage: a HEALTHCHECK run by node itself (no curl or wget in the image).
  const healthcheck = final.instructions.filter((i) => i.keyword === "HEALTHCHECK").at(-1);
  if (!healthcheck || /^NONE$/i.test(healthcheck.args.trim())) {
    report("healthcheck-missing", healthcheck?.line ?? final.from.line, "final stage has no HEALTHCHECK");
  } else {
    const { rest } = splitFlags(healthcheck.args);
    const command = /^CMD\s+([\s\S]*)$/i.exec(rest)?.[1] ?? "";
    const program = execForm(command)?.[0] ?? command.trim().split(/\s+/)[0];
    if (program !== "node" || /\b(curl|wget)\b/.test(command)) {
      report("healthcheck-not-node", healthcheck.line, `HEALTHCHECK must run node, found "${command}"`);
    }
  }

  // Any stage: no ADD of remote URLs (unverified downloads); use a pinned, checksummed COPY.
  for (const stage of stages) {
    for (const instruction of stage.instructions.filter((i) => i.keyword === "ADD")) {
      const { sources } = copyOperands(instruction.args);
      for (const source of sources.filter((s) => /^(https?|git|ssh):\/\/|^git@/i.test(s))) {
        report("add-url", instruction.line, `ADD of a remote source: ${source}`);
      }
    }
  }

  // Final stage: production dependencies by `npm ci --omit=dev`, never `npm install`.
  const runs = final.instructions.filter((i) => i.keyword === "RUN");
  const npmCi = runs.some((i) => /\bnpm\s+(ci|clean-install)\b[^&;|]*--omit[= ]dev\b/.test(i.args));
  if (!npmCi) {
    report("npm-ci-omit-dev-missing", final.from.line, "final stage must install with `npm ci --omit=dev`");
  }
  for (const instruction of runs.filter((i) => /\bnpm\s+(install|i|add)\b/.test(i.args))) {
    report(
      "npm-install-in-final",
      instruction.line,
      "`npm install` in the final stage: use `npm ci --omit=dev`",
    );
  }

  // Final stage: no copy of the whole build context.
  for (const instruction of final.instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD")) {
    const { flags, sources } = copyOperands(instruction.args);
    if (flags.has("from")) continue;
    if (sources.some((s) => s === "." || s === "./" || s === "*" || s === "./*")) {
      report("copy-context-root", instruction.line, `${instruction.keyword} of the whole build context`);
    }
  }
  // Final stage: what GitOps write-back runs (git, ssh, CA certificates), installed lean.
  const aptRun = runs.find((i) => /\bapt-get\s+install\b/.test(i.args));
  const installed = new Set(aptRun ? aptPackages(aptRun.args) : []);
  const absent = GIT_TOOLS.filter((p) => !installed.has(p));
  if (absent.length > 0 || !aptRun) {
    report("git-tools-missing", aptRun?.line ?? final.from.line, `final stage lacks ${absent.join(", ")}`);
  } else if (
    !/--no-install-recommends/.test(aptRun.args) ||
    !/rm\s+-rf\s+\/var\/lib\/apt\/lists/.test(aptRun.args)
  ) {
    report(
      "git-tools-missing",
      aptRun.line,
      "apt-get install needs --no-install-recommends and rm -rf /var/lib/apt/lists/*",
    );
  }

  // Final stage: an explicit HOME that the runtime user owns (git and ssh write there). Without a
  // numeric non-root USER there is no owner to check: the USER rule has already said so.
  const home = envValue(final, "HOME");
  const homeOwned =
    home !== undefined &&
    runs.some(
      (i) => new RegExp(`\\bchown\\s+(-R\\s+)?${uid?.[1]}[:\\s]`).test(i.args) && i.args.includes(home),
    );
  if (uid && Number(uid[1]) !== 0 && (!home || home === "/nonexistent" || !homeOwned)) {
    report(
      "home-not-writable",
      final.from.line,
      `final stage must set ENV HOME to a directory it chowns to the runtime user, found ${home ?? "none"}`,
    );
  }
  return problems;
}

/** The packages GitOps write-back needs in the image. */
const GIT_TOOLS = ["git", "openssh-client", "ca-certificates"];

/** Package names of the `apt-get install` in a RUN (options and the rest of the && chain left out). */
function aptPackages(args: string): string[] {
  const command = /\bapt-get\s+install\b([^&;|]*)/.exec(args)?.[1] ?? "";
  return command.split(/\s+/).filter((w) => w !== "" && !w.startsWith("-"));
}

/** The value the last `ENV name=value` (or `ENV name value`) of a stage gives `name`. */
function envValue(stage: Stage, name: string): string | undefined {
  let value: string | undefined;
  for (const instruction of stage.instructions.filter((i) => i.keyword === "ENV")) {
    const text = instruction.args.trim();
    const legacy = new RegExp(`^${name}\\s+(\\S.*)$`).exec(text);
    if (legacy && !text.includes("=")) value = unquote(legacy[1]!.trim());
    for (const m of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S*)/g)) {
      if (m[1] === name) value = unquote(m[2] ?? "");
    }
  }
  return value;
}

// ---------------------------------------------------------------------------------------------

const dockerfilePath = join(repoRoot, "Dockerfile");

async function dockerfile(): Promise<string> {
  return readFile(dockerfilePath, "utf8");
}

async function finalStage(): Promise<Stage> {
  const final = parseDockerfile(await dockerfile()).stages.at(-1);
  if (!final) throw new Error("no stage");
  return final;
}

function only(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

describe("Dockerfile", () => {
  it("has no problems according to dockerfile-utils' validator", async () => {
    const diagnostics = validate(await dockerfile());
    expect(diagnostics.map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it("follows our rules", async () => {
    expect(lintDockerfile(await dockerfile())).toEqual([]);
  });

  it("builds from the Node major the project is developed on, in every stage", async () => {
    const text = await dockerfile();
    const { globalArgs, stages } = parseDockerfile(text);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as {
      devDependencies?: Record<string, string>;
    };
    const devNode = pkg.devDependencies?.node?.replace(/^[\^~>=]*/, "");
    expect(devNode, "package.json has the node devDependency").toBeTruthy();
    const major = devNode?.split(".")[0];
    expect(globalArgs.get("NODE_VERSION")?.split(".")[0]).toBe(major);
    for (const stage of stages) expect(stage.image).toMatch(new RegExp(`^node:${major}[.-]`));
  });

  it("runs the compiled CLI as a locked-down, production service", async () => {
    const final = await finalStage();
    expect(only(final, "WORKDIR").at(-1)?.args).toBe("/app");
    expect(only(final, "ENV").map((i) => i.args)).toContain("NODE_ENV=production");
    expect(only(final, "EXPOSE").map((i) => i.args.trim())).toEqual(["8080"]);
    expect(execForm(only(final, "ENTRYPOINT").at(-1)?.args ?? "")).toEqual(["node", "dist/cli/main.js"]);
    expect(execForm(only(final, "CMD").at(-1)?.args ?? "")).toEqual([
      "serve",
      "--config",
      "/etc/ferry/ferry.yaml",
    ]);
    expect(execForm(only(final, "VOLUME").at(-1)?.args ?? "")).toEqual(["/var/lib/ferry"]);
    const npmCi = only(final, "RUN").find((i) => /\bnpm ci\b/.test(i.args));
    expect(npmCi?.args).toMatch(/--omit=dev/);
    expect(npmCi?.args).toMatch(/--ignore-scripts/);
  });

  it("runs as the same UID as the Helm chart, and owns /var/lib/ferry", async () => {
    const final = await finalStage();
    const user = only(final, "USER").at(-1)?.args.trim() ?? "";
    const uid = Number(user.split(":")[0]);
    const values = parse(await readFile(join(repoRoot, "helm", "ferry", "values.yaml"), "utf8")) as {
      podSecurityContext: { runAsUser: number };
      securityContext: { runAsUser: number };
    };
    expect(values.podSecurityContext.runAsUser).toBe(uid);
    expect(values.securityContext.runAsUser).toBe(uid);
    const runs = only(final, "RUN").map((i) => i.args);
    expect(runs.some((r) => r.includes(`chown ${uid}:`) && r.includes("/var/lib/ferry"))).toBe(true);
    // The data directory is prepared before VOLUME (later changes to a volume path are discarded).
    const volumeAt = final.instructions.findIndex((i) => i.keyword === "VOLUME");
    const chownAt = final.instructions.findIndex(
      (i) => i.keyword === "RUN" && i.args.includes("/var/lib/ferry"),
    );
    expect(chownAt).toBeGreaterThanOrEqual(0);
    expect(chownAt).toBeLessThan(volumeAt);
  });

  it("copies into the final stage only dist, production node_modules, package files and openapi.yaml", async () => {
    const final = await finalStage();
    const copied: string[] = [];
    for (const instruction of only(final, "COPY")) {
      const { flags, sources } = copyOperands(instruction.args);
      const from = flags.get("from");
      for (const source of sources) copied.push(from ? `${from}:${source}` : source);
    }
    expect(copied.sort()).toEqual(["build:/src/dist", "openapi.yaml", "package-lock.json", "package.json"]);
    expect(only(final, "ADD")).toEqual([]);
  });

  it("keeps the build context to the files the Dockerfile copies (.dockerignore)", async () => {
    const ignore = (await readFile(join(repoRoot, ".dockerignore"), "utf8"))
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    expect(ignore[0], "allow-list: first pattern excludes everything").toBe("*");
    const allowed = new Set(
      ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, "")),
    );
    const contextSources = new Set<string>();
    for (const stage of parseDockerfile(await dockerfile()).stages) {
      for (const instruction of stage.instructions.filter(
        (i) => i.keyword === "COPY" || i.keyword === "ADD",
      )) {
        const { flags, sources } = copyOperands(instruction.args);
        if (!flags.has("from"))
          for (const s of sources) contextSources.add(s.replace(/^\.\//, "").replace(/\/$/, ""));
      }
    }
    expect([...contextSources].filter((s) => !allowed.has(s))).toEqual([]);
    for (const never of ["node_modules", "dist", ".git", ".cache", "data", "test", ".env"]) {
      expect(allowed.has(never), never).toBe(false);
    }
    expect(ignore).toContain("**/*.pem");
  });

  it("has git, an ssh client and CA certificates for GitOps, and a writable HOME for the runtime user", async () => {
    const final = await finalStage();
    const apt = only(final, "RUN").find((i) => /\bapt-get\s+install\b/.test(i.args));
    expect(apt, "an apt-get install in the final stage").toBeDefined();
    expect(aptPackages(apt!.args)).toEqual(expect.arrayContaining(GIT_TOOLS));
    expect(apt!.args).toMatch(/apt-get update/);
    expect(apt!.args).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
    // HOME: explicit, the runtime user's passwd home too, and the data volume (writable even with
    // a read-only root file system), owned by that user and prepared before the VOLUME.
    const home = envValue(final, "HOME");
    expect(home).toBe("/var/lib/ferry");
    const useradd = only(final, "RUN").find((i) => /\buseradd\b/.test(i.args));
    expect(useradd?.args).toMatch(new RegExp(`--home-dir ${home}\\b`));
    expect(execForm(only(final, "VOLUME").at(-1)?.args ?? "")).toContain(home);
    // Set after the build's root npm ran: otherwise its cache would land in HOME, inside the image.
    const homeAt = final.instructions.findIndex((i) => i.keyword === "ENV" && /\bHOME\b/.test(i.args));
    const lastNpm = final.instructions.findLastIndex((i) => i.keyword === "RUN" && /\bnpm\b/.test(i.args));
    expect(homeAt).toBeGreaterThan(lastNpm);
  });

  describe("HEALTHCHECK command", () => {
    let server: Server | undefined;
    afterEach(async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    });

    async function healthcheckArgs(): Promise<string[]> {
      const healthcheck = only(await finalStage(), "HEALTHCHECK").at(-1);
      const { rest } = splitFlags(healthcheck?.args ?? "");
      const args = execForm(rest.replace(/^CMD\s+/i, ""));
      if (!args) throw new Error("HEALTHCHECK CMD is not in exec form");
      return args;
    }

    function runCheck(args: string[], url: string): Promise<number | null> {
      return new Promise((resolve, reject) => {
        // args[0] is "node": run it with the Node this test runs on (24, like the image).
        const child = spawn(process.execPath, args.slice(1), {
          env: { PATH: process.env.PATH, FERRY_HEALTHCHECK_URL: url },
          stdio: "ignore",
        });
        child.on("error", reject);
        child.on("close", resolve);
      });
    }

    async function serve(status: number): Promise<string> {
      const listening = createServer((req, res) => {
        res.statusCode = req.url === "/healthz" ? status : 404;
        res.end();
      });
      server = listening;
      await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(listening.address() as AddressInfo).port}/healthz`;
    }

    it("defaults to GET http://127.0.0.1:8080/healthz", async () => {
      const args = await healthcheckArgs();
      expect(args[0]).toBe("node");
      expect(args.join(" ")).toContain("'http://127.0.0.1:8080/healthz'");
    });

    it("exits 0 when /healthz answers 2xx", async () => {
      expect(await runCheck(await healthcheckArgs(), await serve(200))).toBe(0);
    });

    it("exits 1 when /healthz answers an error", async () => {
      expect(await runCheck(await healthcheckArgs(), await serve(503))).toBe(1);
    });

    it("exits 1 when nothing listens", async () => {
      const url = await serve(200);
      await new Promise<void>((resolve) => server?.close(() => resolve()));
      server = undefined;
      expect(await runCheck(await healthcheckArgs(), url)).toBe(1);
    });
  });
});

describe("Dockerfile rules catch bad Dockerfiles", () => {
  const GIT_TOOLS_RUN =
    "RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client ca-certificates \\\n" +
    " && rm -rf /var/lib/apt/lists/*\n";

  const bad = `FROM node:latest AS build
WORKDIR /src
COPY . .
RUN npm install && npx tsc

FROM node:20-slim AS deps
RUN npm ci

FROM ubuntu
ADD https://example.com/tool.tar.gz /opt/
COPY . .
COPY --from=build /src/node_modules ./node_modules
RUN npm install --production
USER root
HEALTHCHECK CMD curl -f http://localhost:8080/healthz || exit 1
CMD ["node", "dist/cli/main.js"]
`;

  it("reports each problem of a bad Dockerfile", () => {
    const problems = lintDockerfile(bad);
    const rules = problems.map((p) => p.rule);
    expect(new Set(rules)).toEqual(
      new Set<Rule>([
        "base-unpinned",
        "base-not-node-24",
        "user-not-numeric-nonroot",
        "healthcheck-not-node",
        "add-url",
        "npm-ci-omit-dev-missing",
        "npm-install-in-final",
        "copy-context-root",
        "git-tools-missing",
      ]),
    );
    // node:latest (line 1), node:20-slim (line 6) and ubuntu (line 9, no tag) are all flagged.
    expect(problems.filter((p) => p.rule === "base-not-node-24").map((p) => p.line)).toEqual([1, 6, 9]);
    expect(problems.filter((p) => p.rule === "base-unpinned").map((p) => p.line)).toEqual([1, 9]);
    expect(problems.find((p) => p.rule === "add-url")?.line).toBe(10);
    expect(problems.find((p) => p.rule === "copy-context-root")?.line).toBe(11);
  });

  it("reports a missing USER and HEALTHCHECK, UID 0, and HEALTHCHECK NONE", () => {
    const noUser = `FROM node:24.21.0-bookworm-slim\nRUN npm ci --omit=dev\n${GIT_TOOLS_RUN}CMD ["node"]\n`;
    expect(lintDockerfile(noUser).map((p) => p.rule)).toEqual([
      "user-not-numeric-nonroot",
      "healthcheck-missing",
    ]);
    const uidZero = `${noUser}USER 0:0\nHEALTHCHECK NONE\n`;
    expect(lintDockerfile(uidZero).map((p) => p.rule)).toEqual([
      "user-not-numeric-nonroot",
      "healthcheck-missing",
    ]);
    const named = `${noUser}USER ferry\nHEALTHCHECK CMD ["node", "-e", "1"]\n`;
    expect(lintDockerfile(named).map((p) => p.rule)).toEqual(["user-not-numeric-nonroot"]);
  });

  it("accepts a minimal good Dockerfile, with ARG-resolved bases, continuations and a stage alias", () => {
    const good = `# syntax=docker/dockerfile:1
ARG NODE_VERSION=24.1.0
FROM node:\${NODE_VERSION}-bookworm-slim AS build
RUN npm ci
FROM build AS production
# a comment inside a continuation is ignored
RUN npm ci \\
# comment
      --omit=dev
COPY --from=build /src/dist ./dist
${GIT_TOOLS_RUN}RUN mkdir /home/app && chown 10001:10001 /home/app
ENV NODE_ENV=production HOME=/home/app
USER 10001:10001
HEALTHCHECK --interval=30s CMD node -e "process.exit(0)"
`;
    expect(lintDockerfile(good)).toEqual([]);
    // Each GitOps rule on its own: a package missing, recommends pulled in, a HOME nobody owns.
    expect(lintDockerfile(good.replace(" openssh-client", "")).map((p) => p.rule)).toEqual([
      "git-tools-missing",
    ]);
    expect(lintDockerfile(good.replace("--no-install-recommends ", "")).map((p) => p.rule)).toEqual([
      "git-tools-missing",
    ]);
    expect(lintDockerfile(good.replace("chown 10001:10001", "chown 0:0")).map((p) => p.rule)).toEqual([
      "home-not-writable",
    ]);
    expect(lintDockerfile(good.replace(" HOME=/home/app", "")).map((p) => p.rule)).toEqual([
      "home-not-writable",
    ]);
    expect(parseDockerfile(good).stages.map((s) => s.image)).toEqual(["node:24.1.0-bookworm-slim", "build"]);
  });

  it("dockerfile-utils' validator flags a malformed Dockerfile", () => {
    const diagnostics = validate(
      "FROM node:24-bookworm-slim\nHEALTHCHECK --interval=soon CMD node -e 1\nEXPOSE port\n",
    );
    expect(diagnostics.length).toBeGreaterThanOrEqual(2);
  });
});
