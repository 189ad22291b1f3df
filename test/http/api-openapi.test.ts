import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { VERIFICATION_REFUSALS } from "../../src/http/verification-access.ts";

const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8")) as {
  paths: Record<string, Record<string, Record<string, unknown>>>;
};

const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ path, method, op })),
);

describe("openapi.yaml: the /v1 API", () => {
  it("every operation behind a bearer token says whether it consumes the token", () => {
    const guarded = operations.filter(({ op }) => JSON.stringify(op.security ?? []).includes("bearer"));
    expect(guarded.length).toBeGreaterThanOrEqual(2);
    for (const { path, method, op } of guarded) {
      expect(typeof op["x-ferry-consumes-token"], `${method} ${path}`).toBe("boolean");
    }
    expect(spec.paths["/v1/verifications"]!.post!["x-ferry-consumes-token"]).toBe(false);
    expect(spec.paths["/v1/signatures"]!.post!["x-ferry-consumes-token"]).toBe(true);
  });

  it("documents who may verify: 403 with its reasons and 429 with Retry-After", () => {
    const responses = spec.paths["/v1/verifications"]!.post!.responses as Record<
      string,
      { description?: string; headers?: Record<string, unknown> }
    >;
    for (const reason of VERIFICATION_REFUSALS)
      expect(responses["403"]!.description).toContain(`\`${reason}\``);
    expect(responses["429"]!.headers).toHaveProperty("Retry-After");
  });
});
