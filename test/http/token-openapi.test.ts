import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { IDENTITY_REASONS } from "../../src/identity/errors.ts";

const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8"));

describe("openapi.yaml for identity", () => {
  it("documents the token endpoint and Ferry's OIDC documents", () => {
    expect(spec.paths["/v1/token"]?.post).toBeDefined();
    expect(spec.paths["/.well-known/openid-configuration"]?.get).toBeDefined();
    expect(spec.paths["/.well-known/jwks.json"]?.get).toBeDefined();
  });

  it("lists exactly the identity reason codes and the OAuth errors they map to", () => {
    const error = spec.components.schemas.OAuthError.properties;
    expect([...error.reason.enum].sort()).toEqual(Object.keys(IDENTITY_REASONS).sort());
    const oauth = new Set(Object.values(IDENTITY_REASONS).map((r) => r.oauth));
    expect([...error.error.enum].sort()).toEqual([...oauth].sort());
  });
});
