import { z } from "zod";

/** CI/CD platforms whose token claims Ferry knows by name and type. */
export const PLATFORMS = ["github", "gitlab", "kubernetes", "buildkite", "circleci", "generic"] as const;
/** One of {@link PLATFORMS}. */
export type Platform = (typeof PLATFORMS)[number];

const numericDate = z.number().finite().nonnegative();

/** The registered claims every accepted token must carry, with their RFC 7519 types. */
export const registeredClaims = z.looseObject({
  iss: z.string().min(1),
  sub: z.string().min(1).max(2048),
  aud: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(50)]),
  exp: numericDate,
  nbf: numericDate.optional(),
  iat: numericDate,
  jti: z.string().min(1).max(512).optional(),
});

/** The registered claims of a token, parsed. */
export type RegisteredClaims = z.infer<typeof registeredClaims>;

const digits = z.string().regex(/^\d+$/, "expected a string of digits");
const str = z.string();

/**
 * GitHub Actions (`https://token.actions.githubusercontent.com`). Every value is a string, IDs
 * included (`"repository_id": "74"`). `sub` comes in the classic form (`repo:owner/repo:ref:…`), the
 * immutable one that carries the IDs (`repo:owner@65/repo@74:…`), or an organisation's custom
 * template, so it is not parsed here: policies match it.
 */
export const githubClaims = z.looseObject({
  repository: z.string().regex(/^[^/]+\/[^/]+$/),
  repository_id: digits,
  repository_owner: str,
  repository_owner_id: digits,
  ref: str,
  sha: str,
  event_name: str,
  run_id: digits,
  runner_environment: z.string().optional(),
  run_number: digits.optional(),
  run_attempt: digits.optional(),
  actor: str.optional(),
  actor_id: digits.optional(),
  environment: str.optional(),
  ref_type: str.optional(),
  ref_protected: z.enum(["true", "false"]).optional(),
  head_ref: str.optional(),
  base_ref: str.optional(),
  workflow: str.optional(),
  workflow_ref: str.optional(),
  workflow_sha: str.optional(),
  job_workflow_ref: str.optional(),
  job_workflow_sha: str.optional(),
  repository_visibility: str.optional(),
  enterprise: str.optional(),
  enterprise_id: digits.optional(),
});

/**
 * GitLab CI `id_tokens`. IDs are strings (`"project_id": "20"`) except `runner_id`, an integer;
 * `ref` is the bare branch or tag name (`main`, no `refs/heads/`); the flags are the strings
 * `"true"`/`"false"`.
 */
export const gitlabClaims = z.looseObject({
  namespace_id: digits,
  namespace_path: str,
  project_id: digits,
  project_path: str,
  pipeline_id: digits,
  pipeline_source: str,
  job_id: digits,
  ref: z.string().refine((r) => !r.startsWith("refs/"), "GitLab's ref is a bare name"),
  ref_type: z.enum(["branch", "tag"]),
  ref_protected: z.enum(["true", "false"]),
  sha: str,
  user_id: digits.optional(),
  user_login: str.optional(),
  user_email: str.optional(),
  user_access_level: str.optional(),
  ref_path: str.optional(),
  environment: str.optional(),
  environment_protected: z.enum(["true", "false"]).optional(),
  deployment_tier: str.optional(),
  environment_action: str.optional(),
  runner_id: z.int().optional(),
  runner_environment: z.enum(["gitlab-hosted", "self-hosted"]).optional(),
  project_visibility: str.optional(),
  ci_config_ref_uri: str.optional(),
  ci_config_sha: str.optional(),
});

/**
 * Kubernetes projected service-account tokens: `aud` is a list, identity sits under the nested
 * `kubernetes.io` claim, and `sub` must agree with it.
 */
export const kubernetesClaims = z
  .looseObject({
    sub: z.string().regex(/^system:serviceaccount:[^:]+:[^:]+$/),
    "kubernetes.io": z.looseObject({
      namespace: str,
      serviceaccount: z.looseObject({ name: str, uid: str }),
      pod: z.looseObject({ name: str, uid: str }).optional(),
      node: z.looseObject({ name: str, uid: str }).optional(),
      secret: z.looseObject({ name: str, uid: str }).optional(),
      warnafter: z.number().optional(),
    }),
  })
  .refine(
    (c) =>
      c.sub ===
      `system:serviceaccount:${c["kubernetes.io"].namespace}:${c["kubernetes.io"].serviceaccount.name}`,
    { message: "sub does not match kubernetes.io.namespace and serviceaccount.name", path: ["sub"] },
  );

/** Buildkite agent OIDC tokens: `build_number` is an integer, `build_tag` may be null. */
export const buildkiteClaims = z.looseObject({
  organization_slug: str,
  pipeline_slug: str,
  build_number: z.int(),
  build_branch: str.nullable().optional(),
  build_tag: str.nullable().optional(),
  build_commit: str,
  build_source: str.optional(),
  step_key: str.nullable().optional(),
  job_id: str,
  agent_id: str,
  organization_id: str.optional(),
  pipeline_id: str.optional(),
  runner_environment: str.optional(),
});

/** CircleCI OIDC tokens: the platform claims are flat keys named `oidc.circleci.com/…`. */
export const circleciClaims = z.looseObject({
  "oidc.circleci.com/project-id": str,
  "oidc.circleci.com/context-ids": z.array(str).optional(),
  "oidc.circleci.com/vcs-origin": str.optional(),
  "oidc.circleci.com/vcs-ref": str.optional(),
  "oidc.circleci.com/ssh-rerun": z.boolean().optional(),
});

/** The claim schema of each platform (the generic platform checks only the registered claims). */
export const PLATFORM_CLAIMS: Record<Platform, z.ZodType | undefined> = {
  github: githubClaims,
  gitlab: gitlabClaims,
  kubernetes: kubernetesClaims,
  buildkite: buildkiteClaims,
  circleci: circleciClaims,
  generic: undefined,
};

/**
 * Guesses an issuer's platform from its URL, for issuers whose config names none: GitHub.com and
 * GitHub Enterprise Server (`https://HOST/_services/token`), GitLab.com, Buildkite, CircleCI and the
 * usual Kubernetes issuer URLs. Anything else is `generic`; say `platform:` in the config to be sure.
 */
export function detectPlatform(issuerUrl: string): Platform {
  let url: URL;
  try {
    url = new URL(issuerUrl);
  } catch {
    return "generic";
  }
  const host = url.hostname.toLowerCase();
  if (
    host === "token.actions.githubusercontent.com" ||
    url.pathname.replace(/\/$/, "").endsWith("/_services/token")
  )
    return "github";
  if (host === "gitlab.com") return "gitlab";
  if (host === "agent.buildkite.com") return "buildkite";
  if (host === "oidc.circleci.com") return "circleci";
  if (
    host === "kubernetes.default.svc" ||
    host.endsWith(".kubernetes.default.svc") ||
    host === "container.googleapis.com" ||
    host.startsWith("oidc.eks.") ||
    host.endsWith(".oic.prod-aks.azure.com")
  )
    return "kubernetes";
  return "generic";
}

/** Describes the first few problems of a claims parse in caller-safe words (`repository_id: expected a string`). */
export function describeClaimIssues(error: z.ZodError, limit = 3): string {
  return error.issues
    .slice(0, limit)
    .map((i) => `${i.path.map(String).join(".") || "(claims)"}: ${i.message}`)
    .join("; ");
}
