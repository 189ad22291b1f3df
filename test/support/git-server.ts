import { spawn } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { LOOPBACK } from "./net.ts";
import { makeTempDir, type RunResult, run, runOk } from "./proc.ts";

/** Options for {@link startGitServer}. */
export interface GitServerOptions {
  /** When both are set, every request needs this Basic auth (401 otherwise). */
  username?: string;
  password?: string;
  /**
   * Awaited before each request reaches `git http-backend`, after auth: a test stalls a push
   * here (hold the promise) to watch the client while it waits, or counts requests.
   */
  beforeBackend?: (request: GitRequest) => Promise<void> | void;
}

/** A request {@link GitServerOptions.beforeBackend} sees. */
export interface GitRequest {
  method: string;
  /** Path without the query, e.g. `/app.git/git-receive-pack`. */
  path: string;
  /** `git-upload-pack` (fetch) or `git-receive-pack` (push), from the path or `?service=`. */
  service: string | undefined;
}

/** One commit, as {@link TestGitServer.log} lists it (newest first). */
export interface GitCommit {
  sha: string;
  subject: string;
  body: string;
  authorName: string;
  authorEmail: string;
  /** Unix seconds. */
  committedAt: number;
}

/** A running git smart-HTTP server; see {@link startGitServer}. */
export interface TestGitServer {
  /** Base URL `http://127.0.0.1:PORT` (no credentials). */
  baseUrl: string;
  /** The directory holding the bare repos (`<name>.git`). */
  root: string;
  /** Clone/push URL of a repo, with the credentials embedded when auth is on. */
  url(name: string): string;
  /** Makes a bare repo with one commit on `main` holding `files` (path → content; paths may nest). */
  createRepo(name: string, files?: Record<string, string>): Promise<void>;
  /** A file's content at `ref` (branch, tag or sha) in the bare repo. */
  readFile(repo: string, ref: string, path: string): Promise<string>;
  /** Commits reachable from `ref`, newest first. */
  log(repo: string, ref: string): Promise<GitCommit[]>;
  stop(): Promise<void>;
}

/**
 * The environment for git commands run by tests: no system or user config (HOME is a given temp
 * dir), a fixed identity, and no prompting, so a wrong password fails instead of hanging.
 */
export function gitEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    LANG: "C",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "/bin/false",
    GIT_AUTHOR_NAME: "Ferry Test",
    GIT_AUTHOR_EMAIL: "ferry-test@example.invalid",
    GIT_COMMITTER_NAME: "Ferry Test",
    GIT_COMMITTER_EMAIL: "ferry-test@example.invalid",
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
  };
}

/** Runs the git CLI with {@link gitEnv}; never throws for a non-zero exit. */
export function git(args: readonly string[], opts: { cwd?: string; home: string }): Promise<RunResult> {
  return run("git", args, { cwd: opts.cwd, env: gitEnv(opts.home), timeoutMs: 60_000 });
}

function repoDirName(name: string): string {
  if (!/^[A-Za-z0-9._/-]+$/.test(name) || name.split("/").includes("..")) {
    throw new Error(`unsafe repo name: ${name}`);
  }
  return name.endsWith(".git") ? name : `${name}.git`;
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Splits CGI output into headers and the start of the body; undefined until the blank line arrives. */
function splitCgiHeaders(buf: Buffer): { headers: [string, string][]; rest: Buffer } | undefined {
  let end = buf.indexOf("\r\n\r\n");
  let sepLen = 4;
  const lf = buf.indexOf("\n\n");
  if (lf >= 0 && (end < 0 || lf < end)) {
    end = lf;
    sepLen = 2;
  }
  if (end < 0) return undefined;
  const headers: [string, string][] = [];
  for (const line of buf.subarray(0, end).toString("latin1").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { headers, rest: buf.subarray(end + sepLen) };
}

/**
 * Starts a `node:http` bridge to `git http-backend` (CGI) on 127.0.0.1, serving bare repos from a temp
 * dir with clone and push over smart HTTP. git is spawned asynchronously per request, so the test
 * process stays responsive while a push runs. Optional Basic auth guards every request.
 */
export async function startGitServer(opts: GitServerOptions = {}): Promise<TestGitServer> {
  const tmp = await makeTempDir("git");
  const root = join(tmp.path, "repos");
  const home = join(tmp.path, "home");
  await mkdir(root);
  await mkdir(home);
  const authOn = opts.username !== undefined && opts.password !== undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let user: string | undefined;
    if (authOn) {
      const header = req.headers.authorization ?? "";
      const decoded = header.toLowerCase().startsWith("basic ")
        ? Buffer.from(header.slice(6).trim(), "base64").toString("utf8")
        : "";
      const colon = decoded.indexOf(":");
      const ok =
        colon > 0 &&
        safeEqual(decoded.slice(0, colon), opts.username!) &&
        safeEqual(decoded.slice(colon + 1), opts.password!);
      if (!ok) {
        req.resume();
        res.writeHead(401, {
          "www-authenticate": 'Basic realm="ferry-test-git"',
          "content-type": "text/plain",
        });
        res.end("authentication required\n");
        return;
      }
      user = opts.username;
    }
    const url = new URL(req.url ?? "/", "http://git.invalid");
    if (opts.beforeBackend) {
      const service =
        /\/(git-upload-pack|git-receive-pack)$/.exec(url.pathname)?.[1] ?? url.searchParams.get("service");
      req.pause();
      await opts.beforeBackend({
        method: req.method ?? "GET",
        path: url.pathname,
        service: service ?? undefined,
      });
      if (res.destroyed) return;
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      GATEWAY_INTERFACE: "CGI/1.1",
      SERVER_PROTOCOL: "HTTP/1.1",
      SERVER_SOFTWARE: "ferry-test-git",
      REQUEST_METHOD: req.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ""),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_ADDR: req.socket.remoteAddress ?? LOOPBACK,
      // receive-pack is refused to anonymous users unless http.receivepack is set (it is, per repo).
      REMOTE_USER: user ?? "",
    };
    // Chunked uploads (big pushes) have no length: http-backend then reads the body to EOF.
    if (req.headers["content-length"] !== undefined) env.CONTENT_LENGTH = req.headers["content-length"];
    // git compresses large request bodies; http-backend inflates them when told so.
    if (req.headers["content-encoding"]) env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
    // Protocol v2 negotiation travels in this header.
    const protocol = req.headers["git-protocol"];
    if (typeof protocol === "string") env.GIT_PROTOCOL = protocol;

    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    const stderr: Buffer[] = [];
    child.stderr.on("data", (b: Buffer) => stderr.push(b));
    child.stdin.on("error", () => {
      // http-backend may answer (e.g. 404) without reading the body.
    });
    req.pipe(child.stdin);

    let pending: Buffer = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      const parsed = splitCgiHeaders(pending);
      if (!parsed) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const [k, v] of parsed.headers) {
        if (k.toLowerCase() === "status") status = Number.parseInt(v, 10) || 200;
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      if (parsed.rest.length > 0) res.write(parsed.rest);
    });
    child.on("error", (err) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`cannot run git http-backend: ${err.message}\n`);
    });
    child.on("close", (code) => {
      if (!headersDone) {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`git http-backend exited ${code}: ${Buffer.concat(stderr).toString("utf8")}`);
        return;
      }
      res.end();
    });
    res.on("close", () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`test git server: ${String(err)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const gitDir = (name: string) => join(root, repoDirName(name));
  const gitOk = (args: string[], cwd?: string) => runOk("git", args, { cwd, env: gitEnv(home) });

  return {
    baseUrl,
    root,
    url(name: string) {
      const creds = authOn
        ? `${encodeURIComponent(opts.username!)}:${encodeURIComponent(opts.password!)}@`
        : "";
      return `http://${creds}${LOOPBACK}:${port}/${repoDirName(name)}`;
    },
    async createRepo(name: string, files: Record<string, string> = {}) {
      const dir = gitDir(name);
      await gitOk(["init", "--quiet", "--bare", "--initial-branch=main", dir]);
      await gitOk(["--git-dir", dir, "config", "http.receivepack", "true"]);
      // Partial clones (--filter=blob:none) and the lazy blob fetches they make, as forges allow.
      await gitOk(["--git-dir", dir, "config", "uploadpack.allowFilter", "true"]);
      await gitOk(["--git-dir", dir, "config", "uploadpack.allowAnySHA1InWant", "true"]);
      // Populate through a scratch work tree: the bare repo gets the commit on main directly.
      const work = await makeTempDir("git-work");
      try {
        for (const [path, content] of Object.entries(files)) {
          const target = join(work.path, path);
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, content);
        }
        const wt = ["--git-dir", dir, "--work-tree", work.path];
        await gitOk([...wt, "add", "--all"], work.path);
        await gitOk([...wt, "commit", "--quiet", "--allow-empty", "-m", "Initial commit"], work.path);
      } finally {
        await work.remove();
      }
    },
    async readFile(repo: string, ref: string, path: string) {
      return gitOk(["--git-dir", gitDir(repo), "show", `${ref}:${path}`]);
    },
    async log(repo: string, ref: string) {
      const out = await gitOk([
        "--git-dir",
        gitDir(repo),
        "log",
        "--format=%H%x00%s%x00%b%x00%an%x00%ae%x00%ct%x1e",
        ref,
        "--",
      ]);
      return out
        .split("\x1e")
        .map((r) => r.replace(/^\n/, ""))
        .filter((r) => r !== "")
        .map((r) => {
          const [sha = "", subject = "", body = "", authorName = "", authorEmail = "", ct = "0"] =
            r.split("\0");
          return { sha, subject, body: body.trimEnd(), authorName, authorEmail, committedAt: Number(ct) };
        });
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tmp.remove();
    },
  };
}
