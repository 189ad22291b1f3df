import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/io.ts";
import {
  describeChanges,
  exitCodeFor,
  formatApps,
  formatPromotion,
  formatPromotionList,
  isFinished,
  type Promotion,
  PromotionResource,
  resultLine,
} from "../../src/cli/promotion-format.ts";
import { PROMOTION_STATES } from "../../src/promotion/states.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

function promotion(over: Record<string, unknown> = {}): Promotion {
  return PromotionResource.parse({
    id: "p1",
    app: "web",
    digest: DIGEST,
    from: "staging",
    to: "production",
    state: "pending",
    rollback: false,
    requestedBy: {
      issuer: "https://token.actions.githubusercontent.com",
      subject: "repo:acme/web",
      kind: "pipeline",
    },
    createdAt: "2026-12-01T08:00:00.000Z",
    updatedAt: "2026-12-01T08:00:00.000Z",
    gates: [
      { name: "source", status: "passed", reason: "present" },
      { name: "soak", status: "waiting", reason: "soaking", until: "2026-12-01T09:00:00.000Z" },
    ],
    steps: [
      { name: "copy", status: "pending", attempts: 0 },
      { name: "gitops", status: "skipped", attempts: 0, reason: "not_configured" },
      { name: "record", status: "pending", attempts: 0 },
    ],
    ...over,
  });
}

describe("exit codes", () => {
  it("0 promoted, 1 each negative end, 3 each unfinished state; every server state is covered", () => {
    const codes = Object.fromEntries(PROMOTION_STATES.map((s) => [s, exitCodeFor(s)]));
    expect(codes).toEqual({
      pending: EXIT.waiting,
      waiting: EXIT.waiting,
      running: EXIT.waiting,
      promoted: EXIT.ok,
      failed: EXIT.denied,
      rejected: EXIT.denied,
      cancelled: EXIT.denied,
      superseded: EXIT.denied,
      expired: EXIT.denied,
    });
    expect(PROMOTION_STATES.filter(isFinished)).toEqual([
      "promoted",
      "failed",
      "rejected",
      "cancelled",
      "superseded",
      "expired",
    ]);
  });

  it("a state the CLI does not know is refused at parse time, not treated as success", () => {
    expect(PromotionResource.safeParse({ ...promotion(), state: "done" }).success).toBe(false);
  });
});

describe("describeChanges", () => {
  it("first sight: the headline and every gate, and steps that have left `pending`", () => {
    expect(describeChanges(undefined, promotion())).toEqual([
      `promotion p1: web sha256:abababababab staging → production: pending`,
      "  gate source: passed (present)",
      "  gate soak: waiting until 2026-12-01T09:00:00.000Z (soaking)",
      "  step gitops: skipped (not_configured)",
    ]);
  });

  it("later: one line per state, gate and step change, nothing when nothing changed", () => {
    const before = promotion();
    expect(describeChanges(before, promotion())).toEqual([]);
    const after = promotion({
      state: "running",
      gates: [
        { name: "source", status: "passed", reason: "present" },
        { name: "soak", status: "passed", reason: "soaked" },
      ],
      steps: [
        { name: "copy", status: "running", attempts: 2, reason: "upstream_timeout" },
        { name: "gitops", status: "skipped", attempts: 0, reason: "not_configured" },
        { name: "record", status: "pending", attempts: 0 },
      ],
    });
    expect(describeChanges(before, after)).toEqual([
      "state: running",
      "  gate soak: passed (soaked)",
      "  step copy: running (attempt 2) (upstream_timeout)",
    ]);
  });

  it("text from the server cannot move the terminal: control characters are flattened", () => {
    const evil = promotion({
      gates: [{ name: "source", status: "failed", reason: "x", message: "a\u001b[2Jb\nc" }],
    });
    const lines = describeChanges(undefined, evil);
    expect(lines[1]).toBe("  gate source: failed (x) — a [2Jb c");
    expect(lines.join("")).not.toContain("\u001b");
  });
});

describe("result and listings", () => {
  it("the closing line says what happened and why", () => {
    expect(resultLine(promotion({ state: "promoted" }))).toBe(
      "promoted web sha256:abababababab to production (promotion p1)",
    );
    expect(
      resultLine(
        promotion({ state: "failed", result: { reason: "verification_failed", message: "no signature" } }),
      ),
    ).toBe("failed web sha256:abababababab to production (promotion p1): verification_failed — no signature");
    expect(resultLine(promotion({ state: "waiting" }))).toBe(
      "still waiting web sha256:abababababab to production (promotion p1); waiting on soak until 2026-12-01T09:00:00.000Z",
    );
  });

  it("show, list and apps print every field a person needs", () => {
    const shown = formatPromotion(
      promotion({
        requestedBy: {
          issuer: "gh",
          subject: "repo:acme/web",
          kind: "pipeline",
          actor: "alice",
          runUrl: "https://ci/run/1",
        },
      }),
    );
    expect(shown).toContain(`  digest: ${DIGEST}`);
    expect(shown).toContain("  requested by: pipeline repo:acme/web (gh), actor alice");
    expect(shown).toContain("  run: https://ci/run/1");
    expect(shown).toContain("  step record: pending");

    expect(formatPromotionList([promotion(), promotion({ id: "p2", state: "promoted" })])).toBe(
      [
        "ID  APP  TO          STATE     DIGEST               CREATED",
        "p1  web  production  pending   sha256:abababababab  2026-12-01T08:00:00.000Z",
        "p2  web  production  promoted  sha256:abababababab  2026-12-01T08:00:00.000Z",
        "",
      ].join("\n"),
    );
    expect(formatPromotionList([])).toBe("no promotions\n");

    const apps = formatApps({
      apps: [
        {
          name: "web",
          environments: [
            {
              name: "staging",
              repository: "127.0.0.1:5000/staging/web",
              current: { digest: DIGEST, since: "t1", promotion: "p0" },
            },
            { name: "production", repository: "127.0.0.1:5000/prod/web" },
          ],
        },
      ],
    });
    expect(apps.split("\n")[1]).toMatch(
      /^web\s+staging\s+127\.0\.0\.1:5000\/staging\/web\s+sha256:abababababab\s+t1\s+p0$/,
    );
    expect(apps.split("\n")[2]).toMatch(/^web\s+production\s+127\.0\.0\.1:5000\/prod\/web\s+-$/);
  });
});
