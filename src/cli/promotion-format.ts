import { z } from "zod";
import { PROMOTION_STATES } from "../promotion/states.ts";
import { oneLine } from "./api-client.ts";
import { EXIT } from "./io.ts";

/**
 * The promotion resource as the CLI reads it from Ferry: parsed at the boundary, extra fields kept
 * (`--json` prints what the server sent), unknown states refused rather than guessed at.
 */
export const PromotionResource = z.looseObject({
  id: z.string().min(1),
  app: z.string(),
  digest: z.string(),
  from: z.string().nullable().optional(),
  to: z.string(),
  state: z.enum(PROMOTION_STATES),
  rollback: z.boolean().optional(),
  reason: z.string().nullish(),
  requestedBy: z
    .looseObject({
      issuer: z.string().optional(),
      subject: z.string().optional(),
      kind: z.string().optional(),
      actor: z.string().nullish(),
      runUrl: z.string().nullish(),
    })
    .optional(),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
  gates: z
    .array(
      z.looseObject({
        name: z.string(),
        status: z.string(),
        reason: z.string().nullish(),
        message: z.string().nullish(),
        until: z.string().nullish(),
      }),
    )
    .default([]),
  steps: z
    .array(
      z.looseObject({
        name: z.string(),
        status: z.string(),
        attempts: z.number().optional(),
        startedAt: z.string().nullish(),
        finishedAt: z.string().nullish(),
        reason: z.string().nullish(),
        message: z.string().nullish(),
      }),
    )
    .default([]),
  result: z.looseObject({ reason: z.string().nullish(), message: z.string().nullish() }).nullish(),
});
export type Promotion = z.output<typeof PromotionResource>;
export type PromotionState = Promotion["state"];

/** `GET /v1/promotions`. */
export const PromotionList = z.looseObject({
  items: z.array(PromotionResource),
  next: z.string().nullish(),
});

const Current = z.looseObject({
  digest: z.string(),
  since: z.string().nullish(),
  promotion: z.string().nullish(),
});

/** `GET /v1/apps`. */
export const AppList = z.looseObject({
  apps: z.array(
    z.looseObject({
      name: z.string(),
      environments: z.array(
        z.looseObject({ name: z.string(), repository: z.string().nullish(), current: Current.nullish() }),
      ),
    }),
  ),
});
export type Apps = z.output<typeof AppList>;

/** States a promotion ends in without being promoted: the CLI's exit 1. */
const NEGATIVE: ReadonlySet<PromotionState> = new Set([
  "failed",
  "rejected",
  "cancelled",
  "superseded",
  "expired",
]);

/** True when nothing will change the promotion any more. */
export function isFinished(state: PromotionState): boolean {
  return state === "promoted" || NEGATIVE.has(state);
}

/** The exit code a promotion in `state` ends the CLI with: 0 promoted, 1 a negative end, 3 unfinished. */
export function exitCodeFor(state: PromotionState): number {
  if (state === "promoted") return EXIT.ok;
  return NEGATIVE.has(state) ? EXIT.denied : EXIT.waiting;
}

/** `sha256:0123456789ab` — enough to tell digests apart in a line. */
export function shortDigest(digest: string): string {
  const [alg, hex] = digest.split(":");
  return hex === undefined ? digest : `${alg}:${hex.slice(0, 12)}`;
}

const clean = (text: string | null | undefined) => (text ? oneLine(text) : "");

function gateLine(g: Promotion["gates"][number]): string {
  let line = `  gate ${g.name}: ${g.status}`;
  if (g.until) line += ` until ${g.until}`;
  if (g.reason) line += ` (${clean(g.reason)})`;
  if (g.message) line += ` — ${clean(g.message)}`;
  return line;
}

function stepLine(s: Promotion["steps"][number]): string {
  let line = `  step ${s.name}: ${s.status}`;
  if ((s.attempts ?? 0) > 1 || (s.status === "running" && s.attempts)) line += ` (attempt ${s.attempts})`;
  if (s.reason) line += ` (${clean(s.reason)})`;
  if (s.message) line += ` — ${clean(s.message)}`;
  return line;
}

/** The header line of a promotion: what moves where, and its state. */
export function headline(p: Promotion): string {
  const from = p.from ? `${p.from} → ` : "";
  return `promotion ${p.id}: ${p.app} ${shortDigest(p.digest)} ${from}${p.to}${p.rollback ? " (rollback)" : ""}: ${p.state}`;
}

/**
 * The lines that describe what changed from `before` to `after`: the state, then every gate and step
 * whose status, reason, `until` or attempts changed. With no `before`, the headline and every gate
 * and step that has left its initial state (a pending step says nothing yet).
 */
export function describeChanges(before: Promotion | undefined, after: Promotion): string[] {
  const lines: string[] = [];
  if (before === undefined) lines.push(headline(after));
  else if (before.state !== after.state) lines.push(`state: ${after.state}`);
  const gatesBefore = new Map((before?.gates ?? []).map((g) => [g.name, g]));
  for (const g of after.gates) {
    const old = gatesBefore.get(g.name);
    if (old === undefined || old.status !== g.status || old.reason !== g.reason || old.until !== g.until) {
      lines.push(gateLine(g));
    }
  }
  const stepsBefore = new Map((before?.steps ?? []).map((s) => [s.name, s]));
  for (const s of after.steps) {
    const old = stepsBefore.get(s.name);
    const changed =
      old === undefined
        ? s.status !== "pending"
        : old.status !== s.status || old.attempts !== s.attempts || old.reason !== s.reason;
    if (changed) lines.push(stepLine(s));
  }
  return lines;
}

/** The closing line of `ferry promote`. */
export function resultLine(p: Promotion): string {
  const what = `${p.app} ${shortDigest(p.digest)} to ${p.to}`;
  const why = p.result?.reason
    ? `: ${clean(p.result.reason)}${p.result.message ? ` — ${clean(p.result.message)}` : ""}`
    : "";
  if (p.state === "promoted") return `promoted ${what} (promotion ${p.id})`;
  if (NEGATIVE.has(p.state)) return `${p.state} ${what} (promotion ${p.id})${why}`;
  const waitingOn = p.gates
    .filter((g) => g.status === "waiting")
    .map((g) => `${g.name}${g.until ? ` until ${g.until}` : ""}`);
  return `still ${p.state} ${what} (promotion ${p.id})${waitingOn.length ? `; waiting on ${waitingOn.join(", ")}` : ""}`;
}

/** Every field of one promotion, for `ferry promotions show`. */
export function formatPromotion(p: Promotion): string {
  const lines = [headline(p), `  digest: ${p.digest}`];
  if (p.reason) lines.push(`  reason: ${clean(p.reason)}`);
  const by = p.requestedBy;
  if (by) {
    const who = [by.kind, by.subject && clean(by.subject), by.issuer && `(${clean(by.issuer)})`].filter(
      Boolean,
    );
    lines.push(`  requested by: ${who.join(" ")}${by.actor ? `, actor ${clean(by.actor)}` : ""}`);
    if (by.runUrl) lines.push(`  run: ${clean(by.runUrl)}`);
  }
  if (p.createdAt) lines.push(`  created: ${p.createdAt}`);
  if (p.updatedAt) lines.push(`  updated: ${p.updatedAt}`);
  for (const g of p.gates) lines.push(gateLine(g));
  for (const s of p.steps) lines.push(stepLine(s));
  if (p.result?.reason)
    lines.push(
      `  result: ${clean(p.result.reason)}${p.result.message ? ` — ${clean(p.result.message)}` : ""}`,
    );
  return `${lines.join("\n")}\n`;
}

/** Left-aligned columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

/** `ferry promotions list`: one row per promotion. */
export function formatPromotionList(items: Promotion[]): string {
  if (items.length === 0) return "no promotions\n";
  return table(
    ["ID", "APP", "TO", "STATE", "DIGEST", "CREATED"],
    items.map((p) => [
      p.id,
      clean(p.app),
      clean(p.to),
      p.state,
      shortDigest(clean(p.digest)),
      p.createdAt ?? "",
    ]),
  );
}

/** `ferry apps`: one row per app and environment, with what runs there. */
export function formatApps(data: Apps): string {
  if (data.apps.length === 0) return "no apps\n";
  const rows = data.apps.flatMap((a) =>
    a.environments.map((e) => [
      clean(a.name),
      clean(e.name),
      clean(e.repository ?? ""),
      e.current ? shortDigest(clean(e.current.digest)) : "-",
      e.current?.since ?? "",
      clean(e.current?.promotion ?? ""),
    ]),
  );
  return table(["APP", "ENVIRONMENT", "REPOSITORY", "CURRENT", "SINCE", "PROMOTION"], rows);
}
