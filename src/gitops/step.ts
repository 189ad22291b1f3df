/**
 * The `gitops` promotion step: pin the promoted digest in the environment's Git file, by a push
 * (serialised per repository by a fenced lease, a rejected push re-applied on the new head) or by
 * a pull request the promotion waits on. Idempotent across crashes: a commit is found again by its
 * `Ferry-Promotion` trailer, and a commit that was never pushed is dropped by the next sync.
 */
import { backoffDelay, type RetryPolicy } from "../common/backoff.ts";
import type { Clock } from "../common/clock.ts";
import { FerryError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import type { PromotionRecord, StepRecord } from "../promotion/record.ts";
import {
  type StepContext,
  StepFailure,
  type StepOutcome,
  type StepRunner,
} from "../promotion/step-runner.ts";
import type { LeaseOptions } from "../store/leases.ts";
import type { Store } from "../store/store.ts";
import type { CompiledGitopsTarget, GitopsPlan } from "./config.ts";
import { applyEdit } from "./edit.ts";
import type { Forge, PullRequestView } from "./forges/forge.ts";
import { GitError, type GitWorkspace, type WorkingCopy } from "./git.ts";
import { type MessageFacts, promotionTrailer } from "./message.ts";
import type { GitopsMetrics } from "./metrics.ts";

/** What the step needs of a working copy: the git layer's own. */
export type GitopsWorkingCopy = WorkingCopy;

/** What the step needs of the git layer (`GitWorkspace` of src/gitops/git.ts). */
export type GitopsWorkspace = Pick<GitWorkspace, "with">;

/** What {@link GitopsStep} is wired from. */
export interface GitopsStepDeps {
  plan: GitopsPlan;
  workspace: GitopsWorkspace;
  /** The store's leases: writes to one repository are serialised across replicas. */
  leases: Pick<Store, "withLease">;
  /** The forge of a pull-request target. */
  forgeFor: (target: CompiledGitopsTarget) => Forge;
  clock: Clock;
  /** The per-repository lease's time to live (`promotion.leaseTtl`). */
  leaseTtl: number;
  logger: Logger;
  metrics: GitopsMetrics;
  /**
   * The approvers who counted for a promotion, one `Ferry-Approved-By` trailer each. Absent (no
   * approvals wired): no such trailer.
   */
  approvers?: (promotion: PromotionRecord) => Promise<readonly string[]>;
  /** Randomness of the push retries' jitter (tests pass a fixed one). */
  random?: () => number;
}

const PUSH_BACKOFF: Omit<RetryPolicy, "retries"> = { baseDelayMs: 200, maxDelayMs: 5_000 };

/** The branch pull-request mode pushes: one per app and environment, so a pull request is reused. */
export function pullRequestBranch(app: string, environment: string): string {
  return `ferry/${app}/${environment}`;
}

/**
 * A git failure as a step error: wrong credentials or host key fail the promotion (retrying cannot
 * help); an unreachable remote or a failed command is retried. (The git layer scrubs credentials
 * from a GitError's message.)
 */
export function gitFailure(err: unknown): unknown {
  if (!(err instanceof GitError)) return err;
  const { reason, message } = err;
  if (reason === "git_auth_failed" || reason === "git_host_key")
    return new StepFailure(reason, message, { cause: err });
  return new FerryError("upstream_failed", message, { cause: err, detail: { reason } });
}

/** The `gitops` {@link StepRunner}. */
export class GitopsStep implements StepRunner {
  readonly #deps: GitopsStepDeps;

  constructor(deps: GitopsStepDeps) {
    this.#deps = deps;
  }

  configured(app: string, environment: string): boolean {
    return this.#deps.plan.get(app, environment) !== undefined;
  }

  async run(p: PromotionRecord, step: StepRecord, context: StepContext): Promise<StepOutcome> {
    const target = this.#deps.plan.get(p.app, p.environment);
    if (target === undefined) return { status: "done", message: "no gitops target" };
    try {
      return target.mode === "push"
        ? await this.#push(p, target, context.signal)
        : await this.#pullRequest(p, step, target, context.signal);
    } catch (err) {
      if (context.signal.aborted) throw err;
      throw gitFailure(err);
    }
  }

  async #facts(p: PromotionRecord, t: CompiledGitopsTarget): Promise<MessageFacts> {
    const by = p.requestedBy;
    const approvedBy = this.#deps.approvers === undefined ? [] : await this.#deps.approvers(p);
    return {
      promotion: p.id,
      app: p.app,
      environment: p.environment,
      digest: p.digest,
      repository: t.repository,
      requestedBy: by.actor === undefined ? `${by.issuer} ${by.subject}` : `${by.actor} (${by.issuer})`,
      ...(approvedBy.length === 0 ? {} : { approvedBy }),
    };
  }

  /** Runs `fn` under the repository's fenced lease, its signal aborting on the lease's loss too. */
  #underLease<T>(
    t: CompiledGitopsTarget,
    signal: AbortSignal,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const options: LeaseOptions = { ttl: this.#deps.leaseTtl, wait: this.#deps.plan.leaseWait };
    return this.#deps.leases.withLease(`gitops:${t.remote.url}`, options, (_lease, lost) =>
      fn(AbortSignal.any([signal, lost])),
    );
  }

  /** The commit on `branch` carrying this promotion's trailer, if an earlier run pushed one. */
  async #earlierCommit(wc: GitopsWorkingCopy, branch: string, id: string): Promise<string | undefined> {
    const commits = await wc.log(branch, this.#deps.plan.logDepth);
    return commits.find((c) => promotionTrailer(c.message) === id)?.sha;
  }

  /** Reads and edits the target file at the synced head; a refusal fails the promotion. */
  async #edit(wc: GitopsWorkingCopy, p: PromotionRecord, t: CompiledGitopsTarget) {
    const text = await wc.readFile(t.target.path);
    if (text === undefined)
      throw new StepFailure(
        "gitops_path_missing",
        `${t.target.path} does not exist on branch ${t.branch} of ${t.remote.url}`,
      );
    const edit = applyEdit({ text, target: t.target, repository: t.repository, digest: p.digest });
    if (edit.status === "refused") throw new StepFailure(edit.reason, edit.message);
    return edit;
  }

  async #push(p: PromotionRecord, t: CompiledGitopsTarget, outer: AbortSignal): Promise<StepOutcome> {
    const facts = await this.#facts(p, t);
    const where = { repo: t.remote.url, branch: t.branch, path: t.target.path };
    const { clock, plan, metrics } = this.#deps;
    return this.#underLease(t, outer, (signal) =>
      this.#deps.workspace.with(t.remote, async (wc) => {
        for (let attempt = 0; ; attempt++) {
          signal.throwIfAborted();
          const head = await wc.sync(t.branch, signal);
          // A crash between the push and the step's record: the commit is there already.
          const earlier = await this.#earlierCommit(wc, t.branch, p.id);
          if (earlier !== undefined) {
            metrics.write("push", "found");
            return done(`${earlier} (pushed earlier) on ${t.branch}`, { commit: earlier, ...where });
          }
          // Re-applied on each new head, never a text rebase: the edit sees what others pushed.
          const edit = await this.#edit(wc, p, t);
          if (edit.status === "unchanged") {
            metrics.write("push", "unchanged");
            return done(`${t.target.path} already pins ${p.digest}`, {
              commit: head,
              unchanged: true,
              ...where,
            });
          }
          await wc.writeFile(t.target.path, edit.text);
          const commit = await wc.commit(t.message(facts), t.author, t.author);
          if ((await wc.push(t.branch, { signal })) === "pushed") {
            metrics.write("push", "pushed");
            this.#deps.logger.info(
              {
                promotion: p.id,
                app: p.app,
                environment: p.environment,
                commit,
                repo: t.remote.url,
                attempt,
              },
              "gitops: pushed",
            );
            return done(`pushed ${commit} to ${t.branch}`, { commit, ...where });
          }
          metrics.rejected();
          if (attempt >= plan.pushRetries)
            throw new FerryError(
              "upstream_failed",
              `the push to ${t.branch} of ${t.remote.url} was rejected ${attempt + 1} times (others kept pushing first)`,
            );
          const random = this.#deps.random;
          await clock.sleep(
            backoffDelay(attempt + 1, {
              ...PUSH_BACKOFF,
              retries: plan.pushRetries,
              ...(random ? { random } : {}),
            }),
            signal,
          );
        }
      }),
    );
  }

  async #pullRequest(
    p: PromotionRecord,
    step: StepRecord,
    t: CompiledGitopsTarget,
    signal: AbortSignal,
  ): Promise<StepOutcome> {
    const settings = t.pullRequest!;
    const forge = this.#deps.forgeFor(t);
    const { clock, metrics } = this.#deps;
    const stored = step.data ?? {};
    const head = pullRequestBranch(p.app, p.environment);
    const where = { repo: t.remote.url, branch: t.branch, head, path: t.target.path };
    let data: Record<string, unknown>;
    let pr: PullRequestView;
    if (typeof stored.number === "number" && typeof stored.openedAt === "number") {
      data = stored;
      pr = await forge.get(stored.number, signal);
    } else {
      const facts = await this.#facts(p, t);
      const pushed = await this.#underLease(t, signal, (inner) =>
        this.#deps.workspace.with(t.remote, async (wc) => {
          const base = await wc.sync(t.branch, inner);
          const edit = await this.#edit(wc, p, t);
          if (edit.status === "unchanged") return { unchanged: true as const, commit: base };
          await wc.writeFile(t.target.path, edit.text);
          const commit = await wc.commit(t.message(facts), t.author, t.author);
          // From the base's head each time, so the branch holds exactly this one commit.
          if ((await wc.push(head, { force: true, signal: inner })) === "rejected")
            throw new FerryError(
              "upstream_failed",
              `the force-push of ${head} to ${t.remote.url} was rejected`,
            );
          return { unchanged: false as const, commit, message: t.message(facts) };
        }),
      );
      if (pushed.unchanged) {
        metrics.write("pull-request", "unchanged");
        return done(`${t.target.path} already pins ${p.digest} on ${t.branch}`, {
          commit: pushed.commit,
          unchanged: true,
          ...where,
        });
      }
      const open = await forge.findOpen(head, t.branch, signal);
      const [title = "", ...rest] = pushed.message.split("\n");
      pr = open ?? (await forge.open({ head, base: t.branch, title, body: rest.join("\n").trim() }, signal));
      metrics.write("pull-request", open === undefined ? "opened" : "reused");
      data = {
        ...where,
        commit: pushed.commit,
        number: pr.number,
        pullRequest: pr.url,
        openedAt: clock.now(),
      };
      this.#deps.logger.info(
        {
          promotion: p.id,
          app: p.app,
          environment: p.environment,
          pullRequest: pr.url,
          reused: open !== undefined,
        },
        "gitops: pull request",
      );
    }
    if (pr.state === "merged") {
      metrics.write("pull-request", "merged");
      return done(`pull request ${pr.url} merged`, {
        ...data,
        pullRequest: pr.url,
        ...(pr.mergeSha === undefined ? {} : { mergeSha: pr.mergeSha }),
      });
    }
    if (pr.state === "closed") {
      metrics.write("pull-request", "closed");
      throw new StepFailure("gitops_pr_closed", `pull request ${pr.url} was closed without being merged`);
    }
    const now = clock.now();
    const deadline = (data.openedAt as number) + settings.timeout;
    if (now >= deadline) {
      metrics.write("pull-request", "timeout");
      throw new StepFailure("gitops_pr_timeout", `pull request ${pr.url} was not merged within its timeout`);
    }
    return {
      status: "waiting",
      recheckAt: Math.min(now + settings.pollInterval, deadline),
      reason: "awaiting_merge",
      message: `waiting for pull request ${pr.url} to be merged`,
      data,
    };
  }
}

function done(message: string, data: Record<string, unknown>): StepOutcome {
  return { status: "done", message, data };
}
