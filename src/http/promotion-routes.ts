import { type Request, type Response, Router } from "express";
import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import { parseDuration } from "../config/duration.ts";
import { JUSTIFICATION_MAX } from "../promotion/approvals/break-glass.ts";
import { REVIEW_COMMENT_MAX, type Review } from "../promotion/approvals/reviews.ts";
import type { VoteStanding } from "../promotion/approvals/tally.ts";
import type { PromotionRecord } from "../promotion/record.ts";
import { promotionResource } from "../promotion/resource.ts";
import type { PromotionService } from "../promotion/service.ts";
import { PROMOTION_STATES, type PromotionState } from "../promotion/states.ts";
import { principalOf, type TokenUse } from "./auth.ts";

const bodySchema = z.strictObject({
  app: z.string().min(1).max(128),
  digest: z.string().min(1).max(300),
  to: z.string().min(1).max(128),
  rollback: z.boolean().optional(),
  reason: z.string().max(1024).optional(),
  breakGlass: z.strictObject({ justification: z.string().max(JUSTIFICATION_MAX) }).optional(),
});

const reviewSchema = z.strictObject({ comment: z.string().max(REVIEW_COMMENT_MAX) });

/** 1-200 printable ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;
/** The longest `?wait=` honoured; longer asks are cut to it. */
const MAX_WAIT_MS = 60_000;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

function invalid(message: string, reason: string): FerryError {
  return new FerryError("validation_failed", message, { extra: { reason } });
}

function single(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalid(`give \`${name}\` once`, "invalid_query");
  return value;
}

/** A boolean query parameter: `true` or `false`, else 400. */
function flag(req: Request, name: string): boolean | undefined {
  const value = single(req, name);
  if (value === undefined) return undefined;
  if (value !== "true" && value !== "false")
    throw invalid(`\`${name}\` must be true or false`, "invalid_query");
  return value === "true";
}

function reviewResource(r: Review): Record<string, unknown> {
  return { ...r, at: new Date(r.at).toISOString() };
}

/** The votes shown on a promotion (src/approvals/service.ts `view`); absent: none shown. */
export type ApprovalsView = (p: PromotionRecord) => Promise<readonly VoteStanding[] | undefined>;

async function send(
  res: Response,
  status: number,
  promotion: PromotionRecord,
  approvals: ApprovalsView | undefined,
): Promise<void> {
  const votes = await approvals?.(promotion);
  res.setHeader("ETag", `"${promotion.version}"`);
  res.status(status).json(promotionResource(promotion, votes));
}

/**
 * The promotion API: `POST /v1/promotions`, `POST /v1/promotions/{id}/cancel` and
 * `POST /v1/promotions/{id}/reviews` change state and consume the caller's token; reads (`GET /v1/promotions…`, `GET /v1/apps…`, long-polls included)
 * reuse it, and answer only what the caller may read (the service decides, docs/promotion.md "Who
 * may read"). Every route is a few lines: parse, call the service, shape the answer.
 */
export function createPromotionRouter(
  service: PromotionService,
  tokenUse: TokenUse,
  approvals?: ApprovalsView,
): Router {
  const router = Router();

  router.post("/v1/promotions", tokenUse.consume, async (req, res) => {
    const parsed = bodySchema.safeParse(req.body ?? {});
    if (!parsed.success)
      throw new FerryError(
        "validation_failed",
        "expected a JSON body {app, digest, to, rollback?, reason?, breakGlass?: {justification}}",
        {
          extra: {
            problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
          },
        },
      );
    const key = req.get("idempotency-key");
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
      throw invalid("Idempotency-Key must be 1-200 printable ASCII characters", "invalid_idempotency_key");
    const { promotion, created } = await service.request(principalOf(res), parsed.data, key);
    if (created) res.setHeader("Location", `/v1/promotions/${promotion.id}`);
    await send(res, created ? 201 : 200, promotion, approvals);
  });

  router.get("/v1/promotions", tokenUse.reuse, async (req, res) => {
    const principal = principalOf(res);
    const state = single(req, "state");
    if (state !== undefined && !(PROMOTION_STATES as readonly string[]).includes(state))
      throw invalid(`unknown state "${state}" (one of ${PROMOTION_STATES.join(", ")})`, "invalid_query");
    const limitText = single(req, "limit");
    const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw invalid(`\`limit\` must be an integer from 1 to ${MAX_LIMIT}`, "invalid_query");
    const app = single(req, "app");
    const environment = single(req, "environment");
    const cursor = single(req, "cursor");
    const breakGlass = flag(req, "breakGlass");
    const reviewed = flag(req, "reviewed");
    if (reviewed !== undefined && breakGlass === false)
      throw invalid("`reviewed` applies to break-glass promotions only", "invalid_query");
    const page = await service.list(principal, {
      limit,
      ...(app === undefined ? {} : { app }),
      ...(environment === undefined ? {} : { environment }),
      ...(state === undefined ? {} : { state: state as PromotionState }),
      ...(cursor === undefined ? {} : { cursor }),
      ...(breakGlass === undefined ? {} : { breakGlass }),
      ...(reviewed === undefined ? {} : { reviewed }),
    });
    res.json({
      items: page.items.map((p) => promotionResource(p)),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });

  router.get("/v1/promotions/:id", tokenUse.reuse, async (req, res) => {
    const principal = principalOf(res);
    const id = String(req.params.id);
    const waitText = single(req, "wait");
    if (waitText === undefined) {
      await send(res, 200, await service.get(principal, id), approvals);
      return;
    }
    const waitMs = parseDuration(waitText);
    if (waitMs === undefined) throw invalid('`wait` must be a duration such as "30s"', "invalid_query");
    // The caller's view: the version it last saw (the ETag it got), else the version now.
    const seen = /^"?(\d{1,15})"?$/.exec(req.get("if-none-match") ?? "")?.[1];
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const promotion = await service.wait(
      principal,
      id,
      seen === undefined ? undefined : Number(seen),
      Math.min(waitMs, MAX_WAIT_MS),
      gone.signal,
    );
    await send(res, 200, promotion, approvals);
  });

  router.post("/v1/promotions/:id/cancel", tokenUse.consume, async (req, res) => {
    await send(res, 200, await service.cancel(principalOf(res), String(req.params.id)), approvals);
  });

  router.post("/v1/promotions/:id/reviews", tokenUse.consume, async (req, res) => {
    const parsed = reviewSchema.safeParse(req.body ?? {});
    if (!parsed.success)
      throw new FerryError("validation_failed", "expected a JSON body {comment}", {
        extra: {
          problems: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
        },
      });
    const { review, created } = await service.review(
      principalOf(res),
      String(req.params.id),
      parsed.data.comment,
    );
    res.status(created ? 201 : 200).json(reviewResource(review));
  });

  router.get("/v1/apps", tokenUse.reuse, async (_req, res) => {
    const apps = await service.apps(principalOf(res));
    res.json({
      apps: apps.map((a) => ({
        name: a.name,
        environments: a.environments.map((e) => ({
          name: e.name,
          repository: e.repository,
          ...(e.current === undefined
            ? {}
            : {
                current: {
                  digest: e.current.digest,
                  since: new Date(e.current.since).toISOString(),
                  promotion: e.current.promotion,
                },
              }),
        })),
      })),
    });
  });

  router.get("/v1/apps/:app/environments/:env", tokenUse.reuse, async (req, res) => {
    const principal = principalOf(res);
    const app = String(req.params.app);
    const environment = String(req.params.env);
    const view = await service.environment(principal, app, environment);
    res.json({
      app,
      environment,
      repository: view.repository,
      ...(view.current === undefined
        ? {}
        : {
            current: {
              digest: view.current.digest,
              since: new Date(view.current.since).toISOString(),
              promotion: view.current.promotion,
            },
          }),
      history: view.history.map((h) => ({
        digest: h.digest,
        promotion: h.promotion,
        at: new Date(h.at).toISOString(),
        rollback: h.rollback,
        ...(h.reason === undefined ? {} : { reason: h.reason }),
      })),
    });
  });

  return router;
}
