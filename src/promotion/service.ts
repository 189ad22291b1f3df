import { createHash } from "node:crypto";
import type { Clock } from "../common/clock.ts";
import { FerryError } from "../common/errors.ts";
import { newRecordId } from "../common/ids.ts";
import type { Logger } from "../common/logger.ts";
import type { FerryConfig } from "../config/schema.ts";
import type { Principal } from "../identity/principal.ts";
import { isDigest } from "../registry/digest.ts";
import { type CompiledBreakGlass, justificationOf, mayBreakGlass } from "./approvals/break-glass.ts";
import type { BreakGlassReviews, Review } from "./approvals/reviews.ts";
import type { PromotionMetrics } from "./metrics.ts";
import type { PromotionNotifier } from "./notifier.ts";
import type { PromotionPolicies } from "./policies.ts";
import type { PromotionRegistry } from "./ports.ts";
import { mayPromote } from "./promoters.ts";
import { mayRead, type PromotionReadAccess, type ReadScope } from "./read-access.ts";
import type { PromotionRecord } from "./record.ts";
import { requesterOf } from "./requester.ts";
import { checkRollback, rollbackRefusalError, sourceRepository } from "./rollback.ts";
import { isFinal, transition } from "./states.ts";
import type { StepRunners } from "./step-runner.ts";
import { planStepsFor } from "./step-runner.ts";
import type { CurrentEntry, HistoryEntry, PromotionFilter, PromotionPage, PromotionStore } from "./store.ts";

/** A promotion request, as parsed at the boundary. */
export interface PromotionRequest {
  app: string;
  digest: string;
  to: string;
  rollback?: boolean | undefined;
  reason?: string | undefined;
  /** Break-glass: skip order, soak, freeze and approvals (docs/approvals.md). */
  breakGlass?: { justification: string } | undefined;
}

/** What the service is built from. */
export interface PromotionServiceDeps {
  config: Pick<FerryConfig, "apps" | "environments">;
  policies: PromotionPolicies;
  /** Who may read which promotions (compiled once at load). */
  access: PromotionReadAccess;
  store: PromotionStore;
  registry: PromotionRegistry;
  notifier: PromotionNotifier;
  clock: Clock;
  metrics: PromotionMetrics;
  /** A new request or a cancellation: wake the worker. */
  wake: () => void;
  /** The optional steps' runners, to plan the steps a new promotion shows. */
  steps?: StepRunners;
  /** How often a long-poll re-reads the store for changes made by other replicas, ms. */
  pollEvery?: number;
  /** Per environment: its compiled `breakGlass` (none: no environment allows break-glass). */
  breakGlass?: ReadonlyMap<string, CompiledBreakGlass>;
  /** Reviews of break-glass promotions (none: every review is refused). */
  reviews?: BreakGlassReviews;
  /** Where break-glass requests are logged, loudly. */
  logger?: Logger;
}

/** An app's environment in `GET /v1/apps`. */
export interface AppEnvironment {
  name: string;
  repository: string;
  current?: CurrentEntry;
}

const HISTORY_LIMIT = 100;

const refuse = (code: "not_found" | "validation_failed", reason: string, message: string) =>
  new FerryError(code, message, { extra: { reason } });

/**
 * Promotion requests and reads: validates a request (who may promote, the digest, the target, a
 * rollback) before any registry request but the source check, stores it idempotently, and wakes the
 * worker; the gates and steps are the worker's. Reads are the stored facts, each limited to what
 * the reading principal may read: a promotion it may not read is `not_found`, as a missing one is.
 */
export class PromotionService {
  readonly #deps: PromotionServiceDeps;
  readonly #closing = new AbortController();

  constructor(deps: PromotionServiceDeps) {
    this.#deps = deps;
  }

  /** Ends every long-poll in progress (shutdown). */
  close(): void {
    this.#closing.abort();
  }

  #app(name: string) {
    const app = this.#deps.config.apps.find((a) => a.name === name);
    if (app === undefined) throw refuse("not_found", "unknown_app", `unknown app "${name}"`);
    return app;
  }

  #target(appName: string, environment: string) {
    const app = this.#app(appName);
    const env = this.#deps.config.environments.find((e) => e.name === environment);
    if (env === undefined)
      throw refuse("not_found", "unknown_environment", `unknown environment "${environment}"`);
    const repository = Object.hasOwn(app.images, environment) ? app.images[environment] : undefined;
    if (repository === undefined)
      throw refuse(
        "validation_failed",
        "no_repository",
        `app ${app.name} has no repository for ${environment} (apps[].images)`,
      );
    return { app, env, repository };
  }

  /**
   * Requests a promotion. 404 for an unknown app or environment, 400 for an environment the app
   * has no repository in, `tag_reference` for anything but a digest, 403 for a caller who may not
   * promote (before any registry request), 400/409 for a refused rollback, 404 `source_missing` for
   * a digest not in the source repository. Returns the existing promotion (created: false) for a
   * repeated Idempotency-Key with the same body, or while the same (app, digest, to) is unfinished;
   * `idempotency_key_reused` (422) for the key with another body.
   */
  async request(
    principal: Principal,
    body: PromotionRequest,
    idempotencyKey?: string,
  ): Promise<{ promotion: PromotionRecord; created: boolean }> {
    const { app, env, repository } = this.#target(body.app, body.to);
    if (!isDigest(body.digest)) {
      throw /^sha(256|512):/.test(body.digest)
        ? refuse(
            "validation_failed",
            "invalid_digest",
            `"${body.digest}" is not sha256:<64 hex> or sha512:<128 hex>`,
          )
        : new FerryError(
            "tag_reference",
            `"${body.digest}" is not a digest; tags can move, so Ferry promotes only an immutable sha256:… digest`,
          );
    }
    const decision = mayPromote(principal, this.#deps.policies.promoterPolicies(app.name, env.name));
    if (!decision.allowed)
      throw new FerryError("forbidden", decision.message, { extra: { reason: decision.reason } });
    const breakGlass =
      body.breakGlass === undefined ? undefined : this.#breakGlass(principal, env.name, body);
    const rollback = body.rollback === true;
    const reason = body.reason?.trim() || undefined;
    const store = this.#deps.store;
    const verdict = checkRollback(
      { digest: body.digest, rollback, reason },
      rollback ? await store.targetHistory(app.name, env.name) : { previous: [] },
    );
    if (!verdict.ok) throw rollbackRefusalError(verdict);
    const source = sourceRepository(app.images, env, rollback);
    if (source === undefined)
      throw refuse(
        "validation_failed",
        "no_source_repository",
        `app ${app.name} has no repository for ${env.after}, which ${env.name} promotes from (apps[].images)`,
      );

    // A break-glass justification is part of the request (an ordinary request's hash is unchanged).
    const requestHash = sha256(
      JSON.stringify([
        app.name,
        body.digest,
        env.name,
        rollback,
        reason ?? null,
        ...(breakGlass === undefined ? [] : [breakGlass.justification]),
      ]),
    );
    const key =
      idempotencyKey === undefined
        ? undefined
        : { sha256: sha256(`${principal.issuer.url}\u0000${principal.subject}\u0000${idempotencyKey}`) };
    // Repeats answer from the store, without asking the registry again.
    if (key !== undefined) {
      const bound = await store.findByKey(key.sha256);
      if (bound !== undefined) {
        if (bound.requestHash !== requestHash)
          throw new FerryError(
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request; use a new key for a new request",
          );
        const promotion = await store.get(bound.promotionId);
        if (promotion !== undefined) return { promotion, created: false };
      }
    }
    // Checked before any key is bound, and again in the insert's transaction.
    const existing = await store.findUnfinished(app.name, env.name, body.digest);
    if (existing !== undefined) {
      const refusal = breakGlassConflict(existing, breakGlass !== undefined);
      if (refusal !== undefined) throw refusal;
      if (key === undefined) return { promotion: existing, created: false };
    }
    const controller = new AbortController();
    if (!(await this.#deps.registry.exists(source, body.digest, controller.signal)))
      throw refuse("not_found", "source_missing", `${body.digest} is not in ${source}`);

    const now = this.#deps.clock.now();
    const record: PromotionRecord = {
      id: newRecordId(),
      app: app.name,
      environment: env.name,
      digest: body.digest,
      from: rollback ? null : (env.after ?? null),
      sourceRepository: source,
      targetRepository: repository,
      state: "pending",
      version: 1,
      rollback,
      ...(reason === undefined ? {} : { reason }),
      requestedBy: requesterOf(principal, this.#deps.policies.issuerLinks.get(principal.issuer.name)),
      requestHash,
      createdAt: now,
      updatedAt: now,
      nextCheckAt: now,
      gates: [],
      steps: planStepsFor(this.#deps.steps, app.name, env.name),
      ...(breakGlass === undefined
        ? {}
        : {
            breakGlass: {
              justification: breakGlass.justification,
              at: now,
              reviewBy: now + breakGlass.reviewWithin,
            },
          }),
    };
    const result = await store.insert(record, key, (winner) =>
      breakGlassConflict(winner, breakGlass !== undefined),
    );
    if (result.created && record.breakGlass !== undefined) {
      this.#deps.metrics.breakGlass(app.name, env.name);
      this.#deps.logger?.warn(
        {
          promotion: record.id,
          app: app.name,
          environment: env.name,
          digest: body.digest,
          requestedBy: { issuer: principal.issuer.name, subject: principal.subject },
          justification: record.breakGlass.justification,
          reviewBy: new Date(record.breakGlass.reviewBy).toISOString(),
        },
        "break-glass promotion: order, soak, freeze and approvals are skipped; it needs a review",
      );
    }
    if (result.created) this.#deps.wake();
    return result;
  }

  /** The break-glass part of a request: who may, and the justification; throws the refusal. */
  #breakGlass(principal: Principal, environment: string, body: PromotionRequest) {
    const rules = this.#deps.breakGlass?.get(environment);
    const decision = mayBreakGlass(principal, environment, rules);
    if (!decision.allowed) {
      this.#deps.logger?.warn(
        { environment, reason: decision.reason, mismatches: decision.mismatches, subject: principal.subject },
        "break-glass promotion refused",
      );
      throw new FerryError("forbidden", decision.message, { extra: { reason: decision.reason } });
    }
    const justification = justificationOf(body.breakGlass?.justification ?? "");
    if (justification === undefined || rules === undefined)
      throw refuse(
        "validation_failed",
        "break_glass_justification_missing",
        "breakGlass.justification must say why, in 1-1000 characters",
      );
    return { justification, reviewWithin: rules.reviewWithin };
  }

  /**
   * Reviews a break-glass promotion `principal` may read (see {@link BreakGlassReviews.review});
   * `not_found` for one it may not read.
   */
  async review(
    principal: Principal,
    id: string,
    comment: string,
  ): Promise<{ review: Review; created: boolean }> {
    const promotion = await this.get(principal, id);
    if (this.#deps.reviews === undefined)
      throw new FerryError("unavailable", "this Ferry records no reviews");
    const answer = await this.#deps.reviews.review(principal, promotion, comment);
    if (answer.created) this.#deps.notifier.changed(id);
    return answer;
  }

  /** What `principal` may read. */
  scope(principal: Principal): ReadScope {
    return this.#deps.access.scope(principal);
  }

  /** One promotion `principal` may read; `not_found` when there is none or it may not (one answer). */
  async get(principal: Principal, id: string): Promise<PromotionRecord> {
    return this.#visible(this.scope(principal), id);
  }

  async #visible(scope: ReadScope, id: string): Promise<PromotionRecord> {
    const promotion = await this.#deps.store.get(id);
    if (promotion === undefined || !mayRead(scope, promotion.app, promotion.environment))
      throw new FerryError("not_found", `no promotion ${id}`);
    return promotion;
  }

  /**
   * Long-poll: the promotion once its version differs from `since` (default: its version now), it
   * is finished, `waitMs` has passed, or `signal` aborts (the caller went away).
   */
  async wait(
    principal: Principal,
    id: string,
    since: number | undefined,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<PromotionRecord> {
    const { clock, notifier } = this.#deps;
    const scope = this.scope(principal);
    let promotion = await this.#visible(scope, id);
    const seen = since ?? promotion.version;
    const deadline = clock.now() + waitMs;
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    while (promotion.version === seen && !isFinal(promotion.state) && !stop.aborted) {
      const left = deadline - clock.now();
      if (left <= 0) break;
      const round = new AbortController();
      const both = AbortSignal.any([stop, round.signal]);
      await Promise.race([
        notifier.next(id, both),
        clock.sleep(Math.min(left, this.#deps.pollEvery ?? 1000), both).catch(() => undefined),
      ]);
      round.abort();
      promotion = await this.#visible(scope, id);
    }
    return promotion;
  }

  /** The promotions `principal` may read, newest first (none: an empty page). */
  list(principal: Principal, filter: Omit<PromotionFilter, "visible">): Promise<PromotionPage> {
    return this.#deps.store.list({ ...filter, visible: this.scope(principal) });
  }

  /**
   * Cancels a pending or waiting promotion; its requester or anyone who may promote the app there
   * may (`forbidden` for other readers, `not_found` for who may not read it). `conflict` (409)
   * once it runs its steps or has finished.
   */
  async cancel(principal: Principal, id: string): Promise<PromotionRecord> {
    const scope = this.scope(principal);
    for (let attempt = 0; attempt < 5; attempt++) {
      const promotion = await this.#visible(scope, id);
      const own =
        promotion.requestedBy.issuer === principal.issuer.name &&
        promotion.requestedBy.subject === principal.subject;
      if (!own) {
        const decision = mayPromote(
          principal,
          this.#deps.policies.promoterPolicies(promotion.app, promotion.environment),
        );
        if (!decision.allowed)
          throw new FerryError("forbidden", decision.message, { extra: { reason: decision.reason } });
      }
      const state = transition(promotion.state, "cancel");
      const updated = await this.#deps.store.update(
        promotion,
        {
          state,
          nextCheckAt: null,
          result: {
            reason: "cancelled",
            message: `cancelled by ${principal.issuer.name} ${principal.subject}`,
          },
        },
        this.#deps.clock.now(),
      );
      if (updated !== undefined) {
        this.#deps.metrics.finished(updated.app, updated.environment, "cancelled");
        this.#deps.notifier.changed(id);
        this.#deps.wake();
        return updated;
      }
    }
    throw new FerryError("conflict", "the promotion keeps changing; try again");
  }

  /**
   * Every app `principal` may read, with each environment it has a repository in and may read, and
   * the digest current there.
   */
  async apps(principal: Principal): Promise<{ name: string; environments: AppEnvironment[] }[]> {
    const scope = this.scope(principal);
    const readable = this.#deps.config.apps.filter((app) => scope.apps.has(app.name));
    if (readable.length === 0) return [];
    const currents = await this.#deps.store.currents();
    return readable.map((app) => ({
      name: app.name,
      environments: this.#deps.config.environments
        .filter((e) => Object.hasOwn(app.images, e.name) && mayRead(scope, app.name, e.name))
        .map((e) => {
          const current = currents.find((c) => c.app === app.name && c.environment === e.name);
          return { name: e.name, repository: app.images[e.name]!, ...(current ? { current } : {}) };
        }),
    }));
  }

  /**
   * One app's environment: its repository, current digest and history (newest first, bounded). An
   * app or environment `principal` may not read answers as an unknown one.
   */
  async environment(
    principal: Principal,
    appName: string,
    environment: string,
  ): Promise<{ repository: string; current?: CurrentEntry; history: HistoryEntry[] }> {
    const scope = this.scope(principal);
    if (!scope.apps.has(appName)) throw refuse("not_found", "unknown_app", `unknown app "${appName}"`);
    const { app, env, repository } = this.#target(appName, environment);
    if (!mayRead(scope, app.name, env.name))
      throw refuse("not_found", "unknown_environment", `unknown environment "${environment}"`);
    const [currents, history] = await Promise.all([
      this.#deps.store.currents(),
      this.#deps.store.history(app.name, env.name, HISTORY_LIMIT),
    ]);
    const current = currents.find((c) => c.app === app.name && c.environment === env.name);
    return { repository, ...(current ? { current } : {}), history };
  }
}

/**
 * A break-glass request never joins an ordinary unfinished promotion of the same digest: that one
 * would go on waiting for its gates, and upgrading it would skip them for a request someone else
 * made. The caller cancels it and asks again. (An ordinary request joins a break-glass one: the
 * digest is already on its way, and the answer shows it is break-glass.)
 */
function breakGlassConflict(existing: PromotionRecord, breakGlass: boolean): FerryError | undefined {
  if (!breakGlass || existing.breakGlass !== undefined) return undefined;
  return new FerryError(
    "conflict",
    `promotion ${existing.id} of this digest is ${existing.state}; cancel it (POST /v1/promotions/${existing.id}/cancel), then ask again with breakGlass`,
    { extra: { reason: "unfinished_promotion", promotion: existing.id } },
  );
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
