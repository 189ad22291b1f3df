import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CANDIDATE_REASONS, CHECK_REASONS } from "../../src/verify/report.ts";

const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8"));

describe("openapi.yaml: POST /v1/verifications", () => {
  it("is documented with its request and report schemas", () => {
    expect(spec.paths["/v1/verifications"]?.post?.requestBody).toBeDefined();
    expect(spec.components.schemas.VerificationRequest.required).toEqual(["image", "environment"]);
  });

  it("lists exactly the stable reason codes", () => {
    expect(spec.components.schemas.VerificationCheck.properties.reason.enum).toEqual([...CHECK_REASONS]);
    expect(spec.components.schemas.VerificationCandidate.properties.reason.enum).toEqual([
      ...CANDIDATE_REASONS,
    ]);
  });
});
