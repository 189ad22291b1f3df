import { describe, expect, it } from "vitest";
import {
  buildkiteClaims as buildkiteSchema,
  circleciClaims as circleciSchema,
  detectPlatform,
  githubClaims as githubSchema,
  gitlabClaims as gitlabSchema,
  kubernetesClaims as kubernetesSchema,
  registeredClaims,
} from "../../src/identity/claims.ts";
import {
  buildkiteClaims,
  circleciClaims,
  githubClaims,
  githubImmutableClaims,
  gitlabClaims,
  kubernetesClaims,
} from "./fixtures.ts";

const base = { iss: "https://issuer.example", aud: "https://ferry.example.com" };

describe("platform claim schemas", () => {
  it.each([
    ["GitHub", githubSchema, githubClaims(base)],
    ["GitHub (immutable sub)", githubSchema, githubImmutableClaims(base)],
    ["GitLab", gitlabSchema, gitlabClaims(base)],
    ["Kubernetes", kubernetesSchema, kubernetesClaims(base)],
    ["Buildkite", buildkiteSchema, buildkiteClaims(base)],
    ["CircleCI", circleciSchema, circleciClaims(base)],
  ])("accept a real %s claim set, registered claims included", (_name, schema, claims) => {
    expect(schema.safeParse(claims).success).toBe(true);
    expect(registeredClaims.safeParse(claims).success).toBe(true);
  });

  it.each([
    ["GitHub repository_id as a number", githubSchema, githubClaims(base, { repository_id: 74 })],
    ["GitHub run_id missing", githubSchema, githubClaims(base, { run_id: undefined })],
    ["GitHub ref_protected as a boolean", githubSchema, githubClaims(base, { ref_protected: true })],
    ["GitLab runner_id as a string", gitlabSchema, gitlabClaims(base, { runner_id: "1" })],
    ["GitLab project_id as a number", gitlabSchema, gitlabClaims(base, { project_id: 20 })],
    ["GitLab ref as refs/heads/main", gitlabSchema, gitlabClaims(base, { ref: "refs/heads/main" })],
    [
      "Kubernetes namespace missing",
      kubernetesSchema,
      kubernetesClaims(base, { "kubernetes.io": { serviceaccount: { name: "a", uid: "b" } } }),
    ],
    [
      "Kubernetes sub for another account",
      kubernetesSchema,
      kubernetesClaims(base, { sub: "system:serviceaccount:deploy:other" }),
    ],
    ["Buildkite build_number as a string", buildkiteSchema, buildkiteClaims(base, { build_number: "1042" })],
    [
      "CircleCI context-ids as a string",
      circleciSchema,
      circleciClaims(base, { "oidc.circleci.com/context-ids": "x" }),
    ],
  ])("refuse %s", (_name, schema, claims) => {
    expect(schema.safeParse(claims).success).toBe(false);
  });

  it.each([
    ["aud as a number", { aud: 5 }],
    ["an empty aud list", { aud: [] }],
    ["exp as a string", { exp: "1700000000" }],
    ["a negative iat", { iat: -1 }],
    ["jti as a number", { jti: 7 }],
    ["an empty sub", { sub: "" }],
  ])("registered claims: refuse %s", (_name, over) => {
    expect(registeredClaims.safeParse(githubClaims(base, over)).success).toBe(false);
  });
});

describe("platform detection from the issuer URL", () => {
  it.each([
    ["https://token.actions.githubusercontent.com", "github"],
    ["https://github.example.com/_services/token", "github"],
    ["https://gitlab.com", "gitlab"],
    ["https://agent.buildkite.com", "buildkite"],
    ["https://oidc.circleci.com/org/0f4b3ac0", "circleci"],
    ["https://kubernetes.default.svc", "kubernetes"],
    ["https://oidc.eks.eu-west-1.amazonaws.com/id/ABC", "kubernetes"],
    ["https://container.googleapis.com/v1/projects/p/locations/l/clusters/c", "kubernetes"],
    ["https://gitlab.example.com", "generic"],
    ["https://sso.example.com", "generic"],
  ])("%s → %s", (url, platform) => {
    expect(detectPlatform(url)).toBe(platform);
  });
});
