/** Wires GitOps write-back: the compiled targets, the git workspace, the step and drift. */
import type { Registry } from "prom-client";
import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/logger.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { VoteStanding } from "../promotion/approvals/tally.ts";
import type { PromotionRegistry, PromotionVerifier } from "../promotion/ports.ts";
import type { PromotionService } from "../promotion/service.ts";
import type { Store } from "../store/store.ts";
import { type CompiledGitopsTarget, compileGitops, type GitopsPlan } from "./config.ts";
import { DriftService } from "./drift.ts";
import type { Forge } from "./forges/forge.ts";
import { githubForge } from "./forges/github.ts";
import { gitlabForge } from "./forges/gitlab.ts";
import { GitWorkspace } from "./git.ts";
import { createGitopsMetrics, type GitopsMetrics, noGitopsMetrics } from "./metrics.ts";
import { GitopsStep, type GitopsStepDeps, type GitopsWorkspace } from "./step.ts";

/**
 * The `Ferry-Approved-By` values of a promotion: each person whose approval counts, once, as
 * `name (issuer)` (the subject when the token had no name).
 */
export function countingApprovers(standings: readonly VoteStanding[] | undefined): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const { vote, counts } of standings ?? []) {
    const who = `${vote.issuer}\u0000${vote.subject}`;
    if (!counts || vote.decision !== "approve" || seen.has(who)) continue;
    seen.add(who);
    out.push(`${vote.name ?? vote.subject} (${vote.issuer})`);
  }
  return out;
}

/** The forge of a pull-request target, from its settings. */
export function forgeOf(target: CompiledGitopsTarget): Forge {
  const pr = target.pullRequest;
  if (pr === undefined)
    throw new TypeError(`${target.app}/${target.environment} has no pullRequest settings`);
  return pr.forge === "github"
    ? githubForge({ api: pr.api, owner: pr.owner!, repo: pr.repo!, token: pr.token })
    : gitlabForge({ api: pr.api, project: pr.project!, token: pr.token });
}

/** What {@link createGitops} is wired from. */
export interface GitopsWiring {
  config: Pick<FerryConfig, "apps" | "gitops" | "promotion"> & { dev?: boolean };
  /** The config file's folder: relative paths (`gitops.dir`, SSH key files) resolve against it. */
  baseDir: string;
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics?: Registry;
  /** The approvals that counted, for `Ferry-Approved-By` trailers. */
  approvers?: GitopsStepDeps["approvers"];
  /** Test seams: another git layer or forge. */
  workspace?: GitopsWorkspace;
  forgeFor?: (target: CompiledGitopsTarget) => Forge;
}

/** GitOps of one process: the step runner and, once the promotion service exists, drift. */
export interface Gitops {
  plan: GitopsPlan;
  step: GitopsStep;
  drift(deps: {
    promotions: Pick<PromotionService, "environment">;
    registry: PromotionRegistry;
    verifier: PromotionVerifier;
  }): DriftService;
}

/** Compiles the targets once and wires the step; forges are made once per target, on first use. */
export function createGitops(wiring: GitopsWiring): Gitops {
  const plan = compileGitops(wiring.config, wiring.baseDir);
  const workspace =
    wiring.workspace ??
    new GitWorkspace({
      dir: plan.dir,
      timeoutMs: plan.timeout,
      allowFileRemotes: wiring.config.dev === true,
    });
  const metrics: GitopsMetrics =
    wiring.metrics === undefined ? noGitopsMetrics : createGitopsMetrics(wiring.metrics);
  const forges = new Map<CompiledGitopsTarget, Forge>();
  const forgeFor = (target: CompiledGitopsTarget) => {
    let forge = forges.get(target);
    if (forge === undefined) {
      forge = (wiring.forgeFor ?? forgeOf)(target);
      forges.set(target, forge);
    }
    return forge;
  };
  const step = new GitopsStep({
    plan,
    workspace,
    leases: wiring.store,
    forgeFor,
    clock: wiring.clock,
    leaseTtl: wiring.config.promotion.leaseTtl,
    logger: wiring.logger.child({ component: "gitops" }),
    metrics,
    ...(wiring.approvers === undefined ? {} : { approvers: wiring.approvers }),
  });
  return {
    plan,
    step,
    drift: (deps) => new DriftService({ ...deps, plan, workspace, metrics, timeoutMs: plan.timeout }),
  };
}
