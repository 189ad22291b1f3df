import { describe, expect, it } from "vitest";
import { parseChallenges } from "../../src/registry/challenge.ts";

describe("parseChallenges", () => {
  it("parses distribution's bearer challenge", () => {
    // As docker-registry 2.8 sends it (captured).
    const header =
      'Bearer realm="http://127.0.0.1:40123/token",service="ferry-test-registry",scope="repository:team/app:pull"';
    expect(parseChallenges(header)).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "http://127.0.0.1:40123/token",
          service: "ferry-test-registry",
          scope: "repository:team/app:pull",
        },
      },
    ]);
  });

  it("parses several challenges, token values, spaces and escaped quotes", () => {
    const header =
      'Basic realm="a \\"quoted\\" realm", charset=UTF-8, Bearer realm="https://auth.example/token" ,error=insufficient_scope';
    expect(parseChallenges(header)).toEqual([
      { scheme: "basic", params: { realm: 'a "quoted" realm', charset: "UTF-8" } },
      { scheme: "bearer", params: { realm: "https://auth.example/token", error: "insufficient_scope" } },
    ]);
  });

  it("keeps scopes with several actions and names with colons whole", () => {
    const [c] = parseChallenges('bearer scope="repository:a/b:pull,push repository:host:5000/c:pull"');
    expect(c?.params.scope).toBe("repository:a/b:pull,push repository:host:5000/c:pull");
  });

  it("stops at malformed input without inventing parameters", () => {
    expect(parseChallenges("")).toEqual([]);
    expect(parseChallenges('Bearer realm="unterminated')).toEqual([{ scheme: "bearer", params: {} }]);
    expect(parseChallenges("=oops")).toEqual([]);
  });
});
