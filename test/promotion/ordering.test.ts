import { describe, expect, it } from "vitest";
import { nextToRun, type QueuedPromotion, supersededBy } from "../../src/promotion/ordering.ts";
import { PROMOTION_STEPS, planSteps } from "../../src/promotion/steps.ts";

const p = (id: string, createdAt: number, state: QueuedPromotion["state"]): QueuedPromotion => ({
  id,
  createdAt,
  state,
});

describe("one promotion at a time, oldest first", () => {
  const list = [p("c", 3, "waiting"), p("a", 1, "waiting"), p("b", 2, "pending"), p("z", 0, "promoted")];

  it("runs the oldest ready promotion", () => {
    expect(nextToRun(list, new Set(["a", "b", "c"]))?.id).toBe("a");
    expect(nextToRun(list, new Set(["b", "c"]))?.id).toBe("b");
  });

  it("does not let an older promotion still waiting on a gate hold back a newer ready one", () => {
    expect(nextToRun(list, new Set(["c"]))?.id).toBe("c");
  });

  it("runs nothing while one is running, and never a finished one", () => {
    expect(nextToRun([...list, p("r", 9, "running")], new Set(["a", "b", "c"]))).toBeUndefined();
    expect(nextToRun(list, new Set(["z"]))).toBeUndefined();
    expect(nextToRun([], new Set())).toBeUndefined();
  });

  it("breaks ties in request time by id, so replicas agree", () => {
    expect(nextToRun([p("y", 5, "pending"), p("x", 5, "pending")], new Set(["x", "y"]))?.id).toBe("x");
  });
});

describe("supersession", () => {
  it("ends every older queued promotion when a newer one is promoted, and nothing else", () => {
    const list = [
      p("old-pending", 1, "pending"),
      p("old-waiting", 2, "waiting"),
      p("old-failed", 3, "failed"),
      p("winner", 4, "promoted"),
      p("newer", 5, "waiting"),
    ];
    expect(supersededBy(list, list[3]!).map((x) => x.id)).toEqual(["old-pending", "old-waiting"]);
  });

  it("supersedes an older promotion requested in the same millisecond with a smaller id only", () => {
    const list = [p("a", 7, "waiting"), p("b", 7, "promoted"), p("c", 7, "waiting")];
    expect(supersededBy(list, list[1]!).map((x) => x.id)).toEqual(["a"]);
  });
});

describe("steps", () => {
  it("are copy, gitops, evidence, record, in that order: the summary is attached before the promotion ends", () => {
    expect(PROMOTION_STEPS).toEqual(["copy", "gitops", "evidence", "record"]);
  });

  it("skip the gitops and evidence slots until configured", () => {
    expect(planSteps({ gitops: false, evidence: false })).toEqual([
      { name: "copy", status: "pending" },
      { name: "gitops", status: "skipped" },
      { name: "evidence", status: "skipped" },
      { name: "record", status: "pending" },
    ]);
    expect(planSteps({ gitops: true, evidence: true }).every((s) => s.status === "pending")).toBe(true);
  });
});
