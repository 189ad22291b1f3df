/** `gitops`: where Ferry keeps its working copies, and `apps[].gitops.<env>`: where a digest is written (docs/gitops.md). */
import { z } from "zod";
import { templateProblem } from "../../common/commit-template.ts";
import { parseFieldPath } from "../../common/field-path.ts";
import { isLoopbackHostname } from "../../common/url-policy.ts";
import { duration } from "../duration.ts";
import { d, positiveInt } from "./base.ts";

/** Why `url` is no acceptable git or forge URL, or undefined: https, ssh, scp-like; plain http only to a loopback IP. */
export function remoteUrlProblem(url: string, kinds: "git" | "api"): string | undefined {
  if (kinds === "git" && /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]/.test(url)) return undefined;
  // A local repository (the embedded default's demo): dev mode only, checked where `dev` is known.
  if (kinds === "git" && url.startsWith("file://"))
    return url.length > "file://".length ? undefined : "file:// needs a path";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return kinds === "git" ? "expected an https://, ssh:// or user@host:path URL" : "expected an http(s) URL";
  }
  // Credentials in a URL end up in logs, error messages and .git/config: they go in `auth`.
  if (parsed.username !== "" && (kinds === "api" || parsed.protocol !== "ssh:"))
    return "must not carry credentials (put them in `auth` or `token`)";
  if (parsed.password !== "") return "must not carry credentials (put them in `auth` or `token`)";
  if (parsed.protocol === "https:") return undefined;
  if (kinds === "git" && parsed.protocol === "ssh:") return undefined;
  if (parsed.protocol === "http:" && isLoopbackHostname(parsed.hostname)) return undefined;
  return parsed.protocol === "http:"
    ? "plain http is allowed only to a loopback IP address"
    : `unsupported scheme ${parsed.protocol}`;
}

const remoteUrl = (kinds: "git" | "api") =>
  z
    .string()
    .min(1)
    .superRefine((url, ctx) => {
      const problem = remoteUrlProblem(url, kinds);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    });

/** A dotted YAML path (`spec.template.spec.containers[name=web].image`), checked as the editor parses it. */
const fieldPath = z
  .string()
  .min(1)
  .superRefine((field, ctx) => {
    const parsed = parseFieldPath(field);
    if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.message });
  });

const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
    message: "expected a path inside the repository (relative, no `..`)",
  })
  .meta(d("The file to edit, relative to the repository's root."));

const identity = z.strictObject({
  name: z.string().min(1).max(200).meta(d("The name git records.")),
  email: z.string().min(3).max(320).meta(d("The e-mail address git records.")),
});

const auth = z
  .union([
    z.strictObject({
      token: z
        .string()
        .min(1)
        .meta(d('An HTTPS token, e.g. "${GITOPS_TOKEN}"; sent by GIT_ASKPASS, never in a URL.')),
      username: z
        .string()
        .min(1)
        .optional()
        .meta(d("The user name sent with the token (default `x-access-token`; GitLab: `oauth2`).")),
    }),
    z.strictObject({
      sshKeyFile: z.string().min(1).meta(d("The SSH private key file.")),
      knownHostsFile: z
        .string()
        .min(1)
        .meta(d("A known_hosts file pinning the server's host key (StrictHostKeyChecking=yes).")),
    }),
  ])
  .meta(d("How Ferry authenticates to the remote: an HTTPS `token`, or `sshKeyFile` with `knownHostsFile`."));

const pullRequest = z
  .strictObject({
    forge: z.enum(["github", "gitlab"]).meta(d("The forge's API: GitHub (REST v3) or GitLab (REST v4).")),
    api: remoteUrl("api").meta(
      d("The API's base URL, e.g. `https://api.github.com` or `https://gitlab.example.com/api/v4`."),
    ),
    owner: z.string().min(1).optional().meta(d("GitHub: the repository's owner.")),
    repo: z.string().min(1).optional().meta(d("GitHub: the repository's name.")),
    project: z.string().min(1).optional().meta(d("GitLab: the project's id or full path (`group/project`).")),
    token: z.string().min(1).meta(d('The API token, e.g. "${GITHUB_TOKEN}".')),
    timeout: duration
      .prefault("7d")
      .meta(
        d(
          "A pull request not merged this long after it was opened fails the promotion (`gitops_pr_timeout`).",
        ),
      ),
    pollInterval: duration
      .prefault("1m")
      .meta(d("How often Ferry looks whether the pull request was merged.")),
  })
  .superRefine((pr, ctx) => {
    if (pr.forge === "github" && (pr.owner === undefined || pr.repo === undefined))
      ctx.addIssue({
        code: "custom",
        path: ["owner"],
        message: "a github pull request needs `owner` and `repo`",
      });
    if (pr.forge === "gitlab" && pr.project === undefined)
      ctx.addIssue({ code: "custom", path: ["project"], message: "a gitlab merge request needs `project`" });
  })
  .meta(d("Where pull (merge) requests are opened, in `mode: pull-request`."));

const common = {
  repo: remoteUrl("git").meta(
    d(
      "The Git remote: `https://…`, `ssh://…` or `git@host:path` (no credentials in it: see `auth`); in dev mode only, `file://PATH` (a relative PATH resolves against the config file's folder).",
    ),
  ),
  branch: z
    .string()
    .min(1)
    .max(200)
    .default("main")
    .meta(d("The branch Ferry writes to (or targets with a pull request).")),
  path: relativePath,
  mode: z
    .enum(["push", "pull-request"])
    .default("push")
    .meta(
      d(
        "`push`: commit onto `branch`; `pull-request`: push `ferry/<app>/<env>` and wait until it is merged.",
      ),
    ),
  auth: auth.optional(),
  author: identity
    .prefault({ name: "Ferry", email: "ferry@localhost" })
    .meta(d("Author and committer of Ferry's commits.")),
  message: z
    .string()
    .min(1)
    .max(4000)
    .superRefine((template, ctx) => {
      const problem = templateProblem(template);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional()
    .meta(
      d(
        "The commit message template; `{app}`, `{environment}`, `{digest}`, `{shortDigest}`, `{repository}`, `{promotion}` and `{requestedBy}` are filled in. Ferry's trailers are always appended.",
      ),
    ),
  pullRequest: pullRequest.optional(),
};

/** One app's target in one environment: a file of a Git repository, and how the digest is written there. */
export const gitopsTarget = z
  .discriminatedUnion("kind", [
    z.strictObject({
      ...common,
      kind: z.literal("kustomize").meta(d("A kustomization's `images:` entry.")),
      image: z.string().min(1).meta(d("The `images[].name` to set `newName` and `digest` of.")),
      keepTag: z.boolean().default(false).meta(d("Keep `newTag` beside the digest (default: remove it).")),
    }),
    z.strictObject({
      ...common,
      kind: z.literal("helm-values").meta(d("Key paths of a Helm values file.")),
      reference: fieldPath.optional().meta(d("One path whose value becomes `repository@digest`.")),
      repository: fieldPath.optional().meta(d("Or: the path of the repository (with `digest`).")),
      digest: fieldPath.optional().meta(d("Or: the path of the digest.")),
      tag: fieldPath.optional().meta(d("The path of the tag, cleared when given (left alone when not).")),
    }),
    z.strictObject({
      ...common,
      kind: z.literal("yaml").meta(d("Any path of any YAML file.")),
      document: z
        .strictObject({
          kind: z.string().min(1).optional().meta(d("The document's `kind`.")),
          name: z.string().min(1).optional().meta(d("The document's `metadata.name`.")),
        })
        .optional()
        .meta(d("Selects one document of a multi-document file.")),
      field: fieldPath.meta(d("The path, e.g. `spec.template.spec.containers[name=web].image`.")),
      value: z
        .enum(["reference", "digest"])
        .default("reference")
        .meta(d("Write `repository@digest` (default) or the digest alone.")),
    }),
  ])
  .superRefine((t, ctx) => {
    if (t.kind === "helm-values") {
      if ((t.reference === undefined) === (t.digest === undefined))
        ctx.addIssue({
          code: "custom",
          path: ["reference"],
          message: "give either `reference` or `digest` (not both)",
        });
      if (t.reference !== undefined && t.repository !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["repository"],
          message: "`repository` goes with `digest`, not `reference`",
        });
    }
    if (t.mode === "pull-request" && t.pullRequest === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["pullRequest"],
        message: "mode pull-request needs `pullRequest`",
      });
    if (t.mode === "push" && t.pullRequest !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["mode"],
        message: "`pullRequest` is set: use `mode: pull-request`",
      });
  })
  .meta(d("Where and how the promoted digest is written into a Git repository."));

/** `gitops`: Ferry's working copies and push retries. */
export const gitopsSection = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .optional()
      .meta(d("Where the cached working copies live (default `gitops/` beside the config file).")),
    pushRetries: z
      .int()
      .min(0)
      .max(50)
      .default(5)
      .meta(
        d(
          "Times a push rejected as non-fast-forward is retried: fetch, re-apply the edit on the new head, push again (jittered backoff).",
        ),
      ),
    leaseWait: duration
      .prefault("5m")
      .meta(
        d(
          "How long a promotion waits for another one's write to the same repository (a fenced lease per repository).",
        ),
      ),
    timeout: duration.prefault("2m").meta(d("The longest one git command may run.")),
    logDepth: positiveInt
      .default(200)
      .meta(
        d(
          "How many commits of the branch are searched for a promotion's `Ferry-Promotion` trailer after a crash.",
        ),
      ),
  })
  .prefault({})
  .meta(d("GitOps write-back (`apps[].gitops`): working copies, push retries, the per-repository lease."));
