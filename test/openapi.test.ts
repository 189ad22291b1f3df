import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ERROR_CODES } from "../src/common/errors.ts";

const spec = parse(readFileSync(new URL("../openapi.yaml", import.meta.url), "utf8"));

describe("openapi.yaml", () => {
  it("documents exactly Ferry's closed list of error codes, with their statuses", () => {
    const problem = spec.components.schemas.Problem.properties.code;
    expect([...problem.enum].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(problem.description).toContain(`${code} ${status}`);
    }
  });

  it("marks every error code retryable or final exactly as the error table does", () => {
    const marked = spec.components.schemas.Problem.properties.code["x-retryable"];
    expect(marked).toEqual(
      Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { retryable }]) => [code, retryable])),
    );
  });

  it("documents the operational endpoints", () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/openapi.yaml"]) {
      expect(spec.paths[path]?.get, path).toBeDefined();
    }
  });
});
