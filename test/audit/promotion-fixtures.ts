// Promotion records for the audit tests: a minimal valid record, and its changes.
import type { PromotionRecord } from "../../src/promotion/record.ts";

/** A requested promotion of web into production, by a pipeline of the `github` issuer. */
export function requested(id: string, over: Partial<PromotionRecord> = {}): PromotionRecord {
  return {
    id,
    app: "web",
    environment: "production",
    digest: `sha256:${"ab".repeat(32)}`,
    from: "staging",
    sourceRepository: "127.0.0.1:5000/staging/web",
    targetRepository: "127.0.0.1:5000/prod/web",
    state: "pending",
    version: 1,
    rollback: false,
    requestedBy: { issuer: "github", subject: "repo:acme/web:ref:refs/heads/main", kind: "pipeline" },
    requestHash: "c".repeat(64),
    createdAt: 1_000,
    updatedAt: 1_000,
    nextCheckAt: 1_000,
    gates: [],
    steps: [
      { name: "copy", status: "pending", attempts: 0 },
      { name: "gitops", status: "pending", attempts: 0 },
      { name: "record", status: "pending", attempts: 0 },
      { name: "evidence", status: "pending", attempts: 0 },
    ],
    ...over,
  };
}

/** `p` one version on, at `at`, with `changes`. */
export function next(
  p: PromotionRecord,
  changes: Partial<PromotionRecord>,
  at = p.updatedAt + 1,
): PromotionRecord {
  return { ...p, ...changes, version: p.version + 1, updatedAt: at };
}

/** The issuers' URLs the tests map names to. */
export const ISSUERS: ReadonlyMap<string, string> = new Map([
  ["github", "https://token.actions.githubusercontent.com"],
  ["sso", "https://sso.example.com"],
]);
