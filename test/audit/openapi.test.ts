import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ENTRY_TYPES } from "../../src/audit/types.ts";
import { AUDIT_PAGE_MAX, AUDIT_REFUSALS } from "../../src/http/audit-routes.ts";

const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8"));

describe("openapi.yaml: the audit log", () => {
  it("documents both routes, read-only, with the readers' 403 reasons and the page limit", () => {
    const read = spec.paths["/v1/audit"].get;
    const checkpoint = spec.paths["/v1/audit/checkpoint"].get;
    expect(read["x-ferry-consumes-token"]).toBe(false);
    expect(checkpoint["x-ferry-consumes-token"]).toBe(false);
    for (const reason of AUDIT_REFUSALS) expect(read.responses["403"].description).toContain(`\`${reason}\``);
    const limit = read.parameters.find((p: { name: string }) => p.name === "limit");
    expect(limit.schema.maximum).toBe(AUDIT_PAGE_MAX);
    expect(read.responses["200"].content["application/jsonl"].example).toBeTruthy();
    expect(checkpoint.responses["200"].content["application/json"].example).toBeTruthy();
  });

  it("lists exactly the closed list of entry types", () => {
    expect(spec.components.schemas.AuditEntry.properties.type.enum).toEqual([...ENTRY_TYPES]);
  });
});
