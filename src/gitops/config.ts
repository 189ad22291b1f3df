/**
 * `apps[].gitops` and `gitops`, compiled once at load: each (app, environment) gets its remote,
 * its edit target, its message template and, in pull-request mode, its forge's settings.
 */
import path from "node:path";
import type { FerryConfig } from "../config/schema.ts";
import type { GitopsTarget } from "./edit.ts";
import type { GitIdentity, GitRemote } from "./git.ts";
import { compileTemplate, type MessageTemplate } from "./message.ts";

/** A Git remote as the git layer takes it: credentials never in `url`. */
export type GitopsRemote = GitRemote;

/** Who commits. */
export type GitopsIdentity = GitIdentity;

/** Where pull requests are opened. */
export interface PullRequestSettings {
  forge: "github" | "gitlab";
  api: string;
  /** GitHub. */
  owner?: string;
  repo?: string;
  /** GitLab: id or full path. */
  project?: string;
  token: string;
  timeout: number;
  pollInterval: number;
}

/** One app's GitOps target in one environment, ready to run. */
export interface CompiledGitopsTarget {
  app: string;
  environment: string;
  remote: GitopsRemote;
  branch: string;
  /** What the editor pins, and where. */
  target: GitopsTarget;
  /** The environment's image repository (`apps[].images[env]`): what the file is made to pin. */
  repository: string;
  mode: "push" | "pull-request";
  author: GitopsIdentity;
  message: MessageTemplate;
  pullRequest?: PullRequestSettings;
}

/** All GitOps targets, by `app/environment`, and the shared settings. */
export interface GitopsPlan {
  targets: ReadonlyMap<string, CompiledGitopsTarget>;
  dir: string;
  pushRetries: number;
  leaseWait: number;
  timeout: number;
  logDepth: number;
  get(app: string, environment: string): CompiledGitopsTarget | undefined;
}

type AppTarget = NonNullable<FerryConfig["apps"][number]["gitops"]>[string];

function editTarget(t: AppTarget): GitopsTarget {
  switch (t.kind) {
    case "kustomize":
      return { kind: "kustomize", path: t.path, image: t.image, keepTag: t.keepTag };
    case "helm-values": {
      const target: GitopsTarget = { kind: "helm-values", path: t.path };
      if (t.reference !== undefined) target.reference = t.reference;
      if (t.repository !== undefined) target.repository = t.repository;
      if (t.digest !== undefined) target.digest = t.digest;
      if (t.tag !== undefined) target.tag = t.tag;
      return target;
    }
    case "yaml":
      return {
        kind: "yaml",
        path: t.path,
        field: t.field,
        value: t.value,
        ...(t.document === undefined ? {} : { document: t.document }),
      };
  }
}

function remoteOf(t: AppTarget, abs: (p: string) => string): GitopsRemote {
  const auth = t.auth;
  if (auth === undefined) return { url: t.repo };
  if ("token" in auth)
    return {
      url: t.repo,
      auth: {
        kind: "token",
        token: auth.token,
        ...(auth.username === undefined ? {} : { username: auth.username }),
      },
    };
  return {
    url: t.repo,
    auth: { kind: "ssh", privateKeyFile: abs(auth.sshKeyFile), knownHostsFile: abs(auth.knownHostsFile) },
  };
}

/** Compiles the config's GitOps targets; relative files resolve against `baseDir` (the config's folder). */
export function compileGitops(config: Pick<FerryConfig, "apps" | "gitops">, baseDir: string): GitopsPlan {
  const abs = (p: string) => path.resolve(baseDir, p);
  const targets = new Map<string, CompiledGitopsTarget>();
  for (const app of config.apps) {
    for (const [environment, t] of Object.entries(app.gitops ?? {})) {
      const repository = app.images[environment];
      if (repository === undefined) continue; // the schema refuses this; no target without a repository
      const pr = t.pullRequest;
      targets.set(`${app.name}/${environment}`, {
        app: app.name,
        environment,
        remote: remoteOf(t, abs),
        branch: t.branch,
        target: editTarget(t),
        repository,
        mode: t.mode,
        author: t.author,
        message: compileTemplate(t.message),
        ...(pr === undefined
          ? {}
          : {
              pullRequest: {
                forge: pr.forge,
                api: pr.api.replace(/\/+$/, ""),
                token: pr.token,
                timeout: pr.timeout,
                pollInterval: pr.pollInterval,
                ...(pr.owner === undefined ? {} : { owner: pr.owner }),
                ...(pr.repo === undefined ? {} : { repo: pr.repo }),
                ...(pr.project === undefined ? {} : { project: pr.project }),
              },
            }),
      });
    }
  }
  const g = config.gitops;
  return {
    targets,
    dir: abs(g.dir ?? "gitops"),
    pushRetries: g.pushRetries,
    leaseWait: g.leaseWait,
    timeout: g.timeout,
    logDepth: g.logDepth,
    get: (app, environment) => targets.get(`${app}/${environment}`),
  };
}
