/** `notifications`: webhook receivers told of promotion events (docs/notifications.md). */
import { z } from "zod";
import { isLoopbackHostname } from "../../common/url-policy.ts";
import { duration } from "../duration.ts";
import { d, name, positiveInt } from "./base.ts";

/** The events a receiver can subscribe to. Stable: add, never rename. */
export const NOTIFICATION_EVENTS = [
  "awaiting_approval",
  "approved",
  "rejected",
  "promoted",
  "failed",
  "break_glass",
] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

/** Standard Webhooks secrets are 24 to 64 random bytes (the specification's range). */
const SECRET_BYTES = { min: 24, max: 64 };

/**
 * Why `url` may not be a receiver, or undefined when it may: https, or plain http to a loopback IP
 * literal, or plain http anywhere only with `allowInsecure`; never credentials in the URL (they
 * would end up in logs and in the request to a redirect target).
 */
export function receiverUrlProblem(url: string, allowInsecure: boolean): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a URL";
  }
  if (parsed.username !== "" || parsed.password !== "") return "must not carry credentials";
  if (parsed.protocol === "https:") return undefined;
  if (parsed.protocol !== "http:") return "must be an https URL";
  if (isLoopbackHostname(parsed.hostname) || allowInsecure) return undefined;
  return "is plain http to a host that is not a loopback IP address; use https, or set allowInsecure: true";
}

/** Why `secret` is not a Standard Webhooks secret (`whsec_` and base64 of 24-64 bytes), or undefined. */
export function webhookSecretProblem(secret: string): string | undefined {
  if (!secret.startsWith("whsec_")) return 'must start with "whsec_" (a Standard Webhooks secret)';
  const body = secret.slice("whsec_".length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0)
    return 'must be "whsec_" followed by base64';
  const bytes = Buffer.from(body, "base64").length;
  if (bytes < SECRET_BYTES.min || bytes > SECRET_BYTES.max)
    return `must hold ${SECRET_BYTES.min} to ${SECRET_BYTES.max} bytes of key, not ${bytes}`;
  return undefined;
}

const receiver = z
  .strictObject({
    name: name
      .optional()
      .meta(
        d(
          "How logs and metrics name this receiver, and how queued deliveries find it again after a restart; default: the URL's host name. Required when two receivers share a host.",
        ),
      ),
    url: z
      .string()
      .min(1)
      .meta(
        d(
          "Where deliveries are POSTed: an allow-list entry, the only URL this receiver is ever sent to (redirects are not followed). https, or plain http to a loopback IP address, or plain http elsewhere with `allowInsecure`. A Slack incoming-webhook URL is itself a secret: write it as `${VAR}`.",
        ),
      ),
    events: z
      .array(z.enum(NOTIFICATION_EVENTS))
      .min(1)
      .meta(d("The events delivered to this receiver (see docs/notifications.md).")),
    format: z
      .enum(["standard", "slack"])
      .default("standard")
      .meta(
        d(
          "`standard`: a Standard Webhooks delivery (signed JSON with `webhook-id`, `webhook-timestamp`, `webhook-signature`); `slack`: `{text}` for a Slack incoming webhook.",
        ),
      ),
    secret: z
      .string()
      .min(1)
      .optional()
      .meta(
        d(
          "The Standard Webhooks signing secret (`whsec_` and base64 of 24 to 64 random bytes), required for `standard`; write it as `${VAR}` so it stays out of the file.",
        ),
      ),
    allowInsecure: z
      .boolean()
      .default(false)
      .meta(
        d("Allow plain http to a host that is not a loopback IP address (deliveries travel unencrypted)."),
      ),
    timeout: duration
      .prefault("10s")
      .meta(d("How long one delivery attempt may take, connection to answer, before it counts as failed.")),
    retry: z
      .strictObject({
        maxAttempts: positiveInt
          .default(48)
          .meta(d("Attempts (the first included) before the delivery is given up and marked `dead`.")),
        maxAge: duration
          .prefault("24h")
          .meta(d("A delivery still failing this long after its event is given up and marked `dead`.")),
        initialDelay: duration
          .prefault("2s")
          .meta(d("The backoff ceiling before the first retry; it doubles per retry (full jitter).")),
        maxDelay: duration.prefault("15m").meta(d("The largest backoff ceiling between two attempts.")),
      })
      .prefault({})
      .meta(
        d("How failed deliveries are tried again: jittered exponential backoff, within attempts and age."),
      ),
  })
  .superRefine((r, ctx) => {
    const problem = receiverUrlProblem(r.url, r.allowInsecure);
    if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["url"], message: problem });
    if (r.format === "standard") {
      const secretProblem =
        r.secret === undefined ? "is required for format standard" : webhookSecretProblem(r.secret);
      if (secretProblem !== undefined)
        ctx.addIssue({ code: "custom", path: ["secret"], message: secretProblem });
    } else if (r.secret !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["secret"],
        message: "a slack receiver is not signed (its URL is the secret); remove `secret`",
      });
    }
    if (r.retry.initialDelay > r.retry.maxDelay)
      ctx.addIssue({ code: "custom", path: ["retry", "initialDelay"], message: "must not exceed maxDelay" });
  });

/** A receiver's name as logs, metrics and queued deliveries know it. */
export function receiverName(r: { name?: string | undefined; url: string }): string {
  if (r.name !== undefined) return r.name;
  try {
    return new URL(r.url).hostname;
  } catch {
    return r.url;
  }
}

/** `notifications`: the receivers, each an allow-listed URL. */
export const notificationsSection = z
  .array(receiver)
  .default([])
  .superRefine((receivers, ctx) => {
    const seen = new Map<string, number>();
    receivers.forEach((r, i) => {
      const key = receiverName(r);
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else
        ctx.addIssue({
          code: "custom",
          path: [i, "name"],
          message: `receiver name "${key}" is also notifications[${first}]'s; give each receiver a unique name`,
        });
    });
  })
  .meta(
    d(
      "Webhook receivers told of promotion events (awaiting approval, approved, rejected, promoted, failed, break-glass), through a persisted outbox: retried with backoff, at least once.",
    ),
  );

/** One receiver as parsed (durations in ms). */
export type NotificationReceiverConfig = z.output<typeof receiver>;
