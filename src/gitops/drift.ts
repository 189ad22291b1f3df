/**
 * Drift: does what Git pins at the branch head still match what Ferry promoted, and does the
 * environment's repository hold that digest with what its policy requires? Read-only: a fetch,
 * a registry look-up and a verification; nothing is written.
 */
import { FerryError } from "../common/errors.ts";
import type { Principal } from "../identity/principal.ts";
import type { PromotionRegistry, PromotionVerifier } from "../promotion/ports.ts";
import type { PromotionService } from "../promotion/service.ts";
import type { GitopsPlan } from "./config.ts";
import { readPinned } from "./edit.ts";
import { GitError } from "./git.ts";
import type { GitopsMetrics } from "./metrics.ts";
import type { GitopsWorkspace } from "./step.ts";

/** One drift check's findings. */
export interface DriftReport {
  app: string;
  environment: string;
  /** What Ferry recorded as current there; absent before the first promotion. */
  recorded?: { digest: string; promotion: string; since: number };
  git: {
    repo: string;
    branch: string;
    path: string;
    /** The branch head that was read. */
    commit: string;
    /** What the file pins there; absent when the file or the path is missing or does not parse. */
    digest?: string;
    repository?: string;
    /** Why nothing could be read, when so. */
    problem?: string;
  };
  registry: {
    repository: string;
    /** The digest that was looked up: Git's pin, else Ferry's record. */
    digest?: string;
    /** The repository holds a manifest with that digest. */
    present: boolean;
    /** It passed the environment's `require` there (signatures, attestations). */
    verified: boolean;
    /** The first failing check's reason, when not verified. */
    reason?: string;
  };
  /** Ferry's record, Git's pin (digest and repository) and the registry all agree. */
  inSync: boolean;
}

/** What {@link DriftService} is wired from. */
export interface DriftDeps {
  plan: GitopsPlan;
  workspace: GitopsWorkspace;
  /** For the read access and the recorded digest (as `GET /v1/apps/{app}/environments/{env}`). */
  promotions: Pick<PromotionService, "environment">;
  registry: PromotionRegistry;
  verifier: PromotionVerifier;
  metrics: GitopsMetrics;
  /** How long one check may take. */
  timeoutMs: number;
}

/** `GET /v1/apps/{app}/environments/{env}/drift`. */
export class DriftService {
  readonly #deps: DriftDeps;

  constructor(deps: DriftDeps) {
    this.#deps = deps;
  }

  /**
   * Checks drift for one app and environment that `principal` may read (an unreadable or unknown
   * one answers as unknown: `not_found`); `not_found`/`gitops_not_configured` where no target is.
   */
  async check(
    principal: Principal,
    app: string,
    environment: string,
    signal: AbortSignal,
  ): Promise<DriftReport> {
    const view = await this.#deps.promotions.environment(principal, app, environment);
    const target = this.#deps.plan.get(app, environment);
    if (target === undefined)
      throw new FerryError("not_found", `no gitops target for ${app} in ${environment}`, {
        extra: { reason: "gitops_not_configured" },
      });
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.#deps.timeoutMs)]);
    const remote = await this.#deps.workspace
      .with(target.remote, (wc) => wc.readRemote(target.branch, target.target.path, deadline))
      .catch((err: unknown) => {
        throw err instanceof GitError
          ? new FerryError("upstream_failed", err.message, { cause: err, detail: { reason: err.reason } })
          : err;
      });
    const pinned = remote.text === undefined ? undefined : readPinned(remote.text, target.target);
    const git: DriftReport["git"] = {
      repo: target.remote.url,
      branch: target.branch,
      path: target.target.path,
      commit: remote.sha,
      ...(pinned?.digest === undefined ? {} : { digest: pinned.digest }),
      ...(pinned?.repository === undefined ? {} : { repository: pinned.repository }),
      ...(remote.text === undefined
        ? { problem: `${target.target.path} does not exist on ${target.branch}` }
        : pinned?.digest === undefined
          ? { problem: `${target.target.path} pins no digest where the target points` }
          : {}),
    };
    const digest = git.digest ?? view.current?.digest;
    const registry = await this.#registry(target.repository, environment, digest, deadline);
    const recorded = view.current;
    const inSync =
      recorded !== undefined &&
      git.digest === recorded.digest &&
      (git.repository === undefined || git.repository === target.repository) &&
      registry.present &&
      registry.verified;
    this.#deps.metrics.inSync(app, environment, inSync);
    return {
      app,
      environment,
      ...(recorded === undefined
        ? {}
        : { recorded: { digest: recorded.digest, promotion: recorded.promotion, since: recorded.since } }),
      git,
      registry,
      inSync,
    };
  }

  async #registry(
    repository: string,
    environment: string,
    digest: string | undefined,
    signal: AbortSignal,
  ): Promise<DriftReport["registry"]> {
    if (digest === undefined) return { repository, present: false, verified: false };
    const present = await this.#deps.registry.exists(repository, digest, signal);
    if (!present) return { repository, digest, present, verified: false, reason: "not_in_repository" };
    const report = await this.#deps.verifier.verify(`${repository}@${digest}`, environment, signal);
    const failing = report.checks.find((c) => !c.passed);
    return {
      repository,
      digest,
      present,
      verified: report.allowed,
      ...(report.allowed ? {} : { reason: failing?.reason ?? "no_checks" }),
    };
  }
}
