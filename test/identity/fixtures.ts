import { randomUUID } from "node:crypto";

/**
 * Claim sets with the real claim names and value types of each platform, modelled on tokens the
 * platforms document (GitHub "About security hardening with OpenID Connect", GitLab "ID token
 * authentication", Kubernetes projected service-account tokens, Buildkite and CircleCI OIDC docs).
 * `iss`, `aud` and the times are the test's; everything else is as the platform sends it.
 */
export interface Base {
  iss: string;
  aud: string | string[];
  /** Epoch seconds; default now. */
  now?: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const SHA = "d6f2a7f1c7d5b3a8e6f0c4b2a9e8d7c6b5a4f3e2";

/** GitHub Actions: every value a string, IDs included; `sub` in the classic form. */
export function githubClaims(base: Base, over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = base.now ?? nowSeconds();
  return {
    jti: randomUUID(),
    sub: "repo:acme/web:ref:refs/heads/main",
    aud: base.aud,
    ref: "refs/heads/main",
    sha: SHA,
    repository: "acme/web",
    repository_owner: "acme",
    repository_owner_id: "65",
    run_id: "9876543210",
    run_number: "42",
    run_attempt: "1",
    repository_visibility: "private",
    repository_id: "74",
    actor_id: "12",
    actor: "octocat",
    workflow: "release",
    head_ref: "",
    base_ref: "",
    event_name: "push",
    ref_protected: "true",
    ref_type: "branch",
    workflow_ref: "acme/web/.github/workflows/release.yml@refs/heads/main",
    workflow_sha: SHA,
    job_workflow_ref: "acme/web/.github/workflows/release.yml@refs/heads/main",
    job_workflow_sha: SHA,
    runner_environment: "github-hosted",
    iss: base.iss,
    nbf: iat - 5,
    exp: iat + 300,
    iat,
    ...over,
  };
}

/** GitHub Actions with an environment and the immutable `sub` form that carries the IDs. */
export function githubImmutableClaims(
  base: Base,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return githubClaims(base, {
    sub: "repo:acme@65/web@74:environment:production",
    environment: "production",
    ...over,
  });
}

/** GitLab CI `id_tokens`: string IDs, integer `runner_id`, bare `ref`, string flags. */
export function gitlabClaims(base: Base, over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = base.now ?? nowSeconds();
  return {
    namespace_id: "72",
    namespace_path: "acme",
    project_id: "20",
    project_path: "acme/api",
    user_id: "1",
    user_login: "sample-user",
    user_email: "sample-user@example.com",
    user_access_level: "developer",
    pipeline_id: "574",
    pipeline_source: "push",
    job_id: "302",
    ref: "main",
    ref_type: "branch",
    ref_path: "refs/heads/main",
    ref_protected: "true",
    environment: "staging",
    environment_protected: "false",
    deployment_tier: "staging",
    environment_action: "start",
    runner_id: 1,
    runner_environment: "gitlab-hosted",
    sha: "714a629c0b401fdce83e847fc9589983fc6f46bc",
    project_visibility: "private",
    ci_config_ref_uri: "gitlab.example.com/acme/api//.gitlab-ci.yml@refs/heads/main",
    ci_config_sha: "714a629c0b401fdce83e847fc9589983fc6f46bc",
    jti: randomUUID(),
    iss: base.iss,
    iat,
    nbf: iat - 5,
    exp: iat + 3600,
    sub: "project_path:acme/api:ref_type:branch:ref:main",
    aud: base.aud,
    ...over,
  };
}

/** A Kubernetes projected service-account token: `aud` a list, identity nested under `kubernetes.io`. */
export function kubernetesClaims(base: Base, over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = base.now ?? nowSeconds();
  return {
    aud: Array.isArray(base.aud) ? base.aud : [base.aud],
    exp: iat + 3600,
    iat,
    iss: base.iss,
    jti: randomUUID(),
    "kubernetes.io": {
      namespace: "deploy",
      node: { name: "worker-1", uid: "58456cb0-dd00-45ed-b797-5578fdceaced" },
      pod: { name: "deployer-69cbfb9798-jv9gn", uid: "778a530c-b3f4-47c0-9cd5-ab018fb64f33" },
      serviceaccount: { name: "deployer", uid: "a087d5a0-e1dd-43ec-93ac-f13d89cd13af" },
      warnafter: iat + 3607,
    },
    nbf: iat,
    sub: "system:serviceaccount:deploy:deployer",
    ...over,
  };
}

/** Buildkite: integer `build_number`, nullable `build_tag`; no `jti`. */
export function buildkiteClaims(base: Base, over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = base.now ?? nowSeconds();
  return {
    iss: base.iss,
    sub: `organization:acme-inc:pipeline:web:ref:refs/heads/main:commit:${SHA}:step:deploy`,
    aud: base.aud,
    iat,
    nbf: iat,
    exp: iat + 300,
    organization_slug: "acme-inc",
    pipeline_slug: "web",
    build_number: 1042,
    build_branch: "main",
    build_tag: null,
    build_commit: SHA,
    build_source: "webhook",
    step_key: "deploy",
    job_id: "0184990a-477b-4fa8-9968-496074483cee",
    agent_id: "0184990a-4782-42b5-afc1-16715b10b8ff",
    runner_environment: "buildkite-hosted",
    ...over,
  };
}

/** CircleCI: flat `oidc.circleci.com/…` claims, `context-ids` a list; no `jti`. */
export function circleciClaims(base: Base, over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = base.now ?? nowSeconds();
  return {
    iss: base.iss,
    sub: "org/0f4b3ac0-6f29-4f0b-a8f2-3d8a7b1c2e4f/project/7a9e5b1c-2d3f-4e5a-8b6c-9d0e1f2a3b4c/user/1c2d3e4f-5a6b-7c8d-9e0f-a1b2c3d4e5f6",
    aud: base.aud,
    iat,
    exp: iat + 3600,
    "oidc.circleci.com/project-id": "7a9e5b1c-2d3f-4e5a-8b6c-9d0e1f2a3b4c",
    "oidc.circleci.com/context-ids": ["2f3e4d5c-6b7a-8c9d-0e1f-2a3b4c5d6e7f"],
    "oidc.circleci.com/vcs-origin": "github.com/acme/web",
    "oidc.circleci.com/vcs-ref": "refs/heads/main",
    "oidc.circleci.com/ssh-rerun": false,
    ...over,
  };
}

/** An SSO ID token for a person, with groups. */
export function humanClaims(base: Base, over: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = base.now ?? nowSeconds();
  return {
    iss: base.iss,
    sub: "00u1a2b3c4d5e6f7g8h9",
    aud: base.aud,
    iat,
    exp: iat + 3600,
    jti: randomUUID(),
    email: "ada@example.com",
    name: "Ada Lovelace",
    groups: ["release-managers", "engineering"],
    ...over,
  };
}
