import type { ApprovalNeeds } from "../promotion/gates.ts";
import type { GateRecord, PromotionResult } from "../promotion/record.ts";
import type { NotificationEvent, NotifiedPromotion } from "./events.ts";

/** The `data` of a `standard` delivery: what a receiver needs to act, and where to look further. */
export interface PromotionEventData {
  id: string;
  app: string;
  environment: string;
  from: string | null;
  digest: string;
  state: string;
  rollback: boolean;
  /** The promotion resource in Ferry's API. */
  url: string;
  /** Why it ended as it did (`failed`, `rejected`); for `rejected`, who rejected it and their comment. */
  result?: EventResult;
  /** What the approvals gate still needs (`awaiting_approval`): how many more people, from which groups. */
  needs?: ApprovalNeeds;
  /** Why break-glass was used, and when its review is due (`break_glass`). */
  breakGlass?: { justification: string; reviewBy: string };
}

/** The body of a `standard` delivery (Standard Webhooks: `type`, `timestamp`, `data`). */
export interface StandardPayload {
  type: `ferry.promotion.${NotificationEvent}`;
  /** When the event happened (the change's time), ISO 8601; the same on every retry. */
  timestamp: string;
  data: PromotionEventData;
}

/** A promotion's result as told: the approver who rejected it is told (that is the news), nothing else of anyone. */
export interface EventResult {
  reason: string;
  message: string;
  /** `rejected`: the approver (issuer name, subject, display name), never their token or claims. */
  by?: { issuer: string; subject: string; name?: string };
  /** `rejected`: the approver's comment, why. */
  comment?: string;
}

/** The approvals gate's `needs`, copied field by field (a stored record may carry more than is told). */
function needsOf(gate: GateRecord | undefined): ApprovalNeeds | undefined {
  const needs = gate?.needs;
  return needs === undefined ? undefined : { more: needs.more, groups: [...needs.groups] };
}

/** The result of a `failed` or `rejected` promotion, field by field. */
function resultOf(event: NotificationEvent, result: PromotionResult | undefined): EventResult | undefined {
  if (result === undefined || (event !== "failed" && event !== "rejected")) return undefined;
  const told: EventResult = { reason: result.reason, message: result.message };
  if (event === "rejected" && result.by !== undefined)
    told.by = {
      issuer: result.by.issuer,
      subject: result.by.subject,
      ...(result.by.name === undefined ? {} : { name: result.by.name }),
    };
  if (event === "rejected" && result.comment !== undefined) told.comment = result.comment;
  return told;
}

/** The promotion resource's URL under Ferry's public URL. */
export function promotionUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/v1/promotions/${encodeURIComponent(id)}`;
}

/** The event's `data`: identifiers, state and link; never tokens, claims or verification reports. */
export function eventData(
  event: NotificationEvent,
  p: NotifiedPromotion,
  publicUrl: string,
): PromotionEventData {
  const approvals = p.gates.find((g) => g.name === "approvals");
  const needs = event === "awaiting_approval" ? needsOf(approvals) : undefined;
  const result = resultOf(event, p.result);
  return {
    id: p.id,
    app: p.app,
    environment: p.environment,
    from: p.from,
    digest: p.digest,
    state: p.state,
    rollback: p.rollback,
    url: promotionUrl(publicUrl, p.id),
    ...(result === undefined ? {} : { result }),
    ...(needs === undefined ? {} : { needs }),
    ...(event === "break_glass" && p.breakGlass !== undefined
      ? {
          breakGlass: {
            justification: p.breakGlass.justification,
            reviewBy: new Date(p.breakGlass.reviewBy).toISOString(),
          },
        }
      : {}),
  };
}

/** The `standard` body of one event. */
export function standardPayload(
  event: NotificationEvent,
  p: NotifiedPromotion,
  publicUrl: string,
): StandardPayload {
  return {
    type: `ferry.promotion.${event}`,
    timestamp: new Date(p.updatedAt).toISOString(),
    data: eventData(event, p, publicUrl),
  };
}

const SUMMARY: Record<NotificationEvent, string> = {
  awaiting_approval: "waits for approval to enter",
  approved: "was approved for",
  rejected: "was rejected for",
  promoted: "was promoted into",
  failed: "failed to enter",
  break_glass: "was promoted by break-glass into",
};

/** Slack's mrkdwn treats these as control characters; config names never hold them, results might. */
const slackEscape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The `slack` body of one event: one readable line with a link (`<url|text>` is Slack's link form). */
export function slackPayload(
  event: NotificationEvent,
  p: NotifiedPromotion,
  publicUrl: string,
): { text: string } {
  const short = p.digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]*$/, "$1…");
  const why =
    (event === "failed" || event === "rejected") && p.result !== undefined
      ? `: ${slackEscape(p.result.reason)}`
      : "";
  const text = `Ferry: ${slackEscape(p.app)} ${short} ${SUMMARY[event]} ${slackEscape(p.environment)}${why} (<${promotionUrl(publicUrl, p.id)}|promotion ${p.id}>)`;
  return { text };
}

/** The stored body of one event for a receiver of `format`. */
export function renderBody(
  format: "standard" | "slack",
  event: NotificationEvent,
  p: NotifiedPromotion,
  publicUrl: string,
): string {
  return JSON.stringify(
    format === "slack" ? slackPayload(event, p, publicUrl) : standardPayload(event, p, publicUrl),
  );
}
