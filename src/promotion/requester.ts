import type { Principal } from "../identity/principal.ts";
import { linksOf } from "./approvals/links.ts";
import type { IssuerLinks } from "./approvals/rules.ts";
import type { Requester } from "./record.ts";

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const id = (v: unknown): string | undefined =>
  typeof v === "number" && Number.isSafeInteger(v) ? String(v) : str(v);

/** GitHub's web origin for an issuer: github.com for the public issuer, else the issuer's own origin (GHES). */
function githubServer(issuerUrl: string): string {
  const url = new URL(issuerUrl);
  return url.hostname === "token.actions.githubusercontent.com" ? "https://github.com" : url.origin;
}

/**
 * Who asked, for the promotion resource: issuer, subject and kind, and for a pipeline the run's
 * actor and URL, built only from the verified claims (GitHub: `actor` and
 * `<server>/<repository>/actions/runs/<run_id>`; GitLab: `user_login` and
 * `<issuer>/<project_path>/-/jobs/<job_id>`, or `/-/pipelines/<pipeline_id>` without a job id).
 * Separation of duties (src/approvals/) compares approvers with what is recorded here, at request
 * time: a pipeline's platform and actor id (GitHub `actor_id`, GitLab `user_id`), and a person's
 * link claims (`links`, their human issuer's `issuers[].links`).
 */
export function requesterOf(principal: Principal, links?: IssuerLinks): Requester {
  const base: Requester = { issuer: principal.issuer.name, subject: principal.subject, kind: principal.kind };
  if (principal.kind !== "pipeline") {
    const own = linksOf(principal, links);
    return Object.keys(own).length === 0 ? base : { ...base, links: own };
  }
  const c = principal.claims;
  let actor: string | undefined;
  let actorId: string | undefined;
  let runUrl: string | undefined;
  try {
    if (principal.issuer.platform === "github") {
      actor = str(c.actor);
      actorId = id(c.actor_id);
      const repository = str(c.repository);
      const run = id(c.run_id);
      if (repository && run)
        runUrl = `${githubServer(principal.issuer.url)}/${repository}/actions/runs/${run}`;
    } else if (principal.issuer.platform === "gitlab") {
      actor = str(c.user_login);
      actorId = id(c.user_id);
      const project = str(c.project_path);
      const job = id(c.job_id);
      const pipeline = id(c.pipeline_id);
      const origin = new URL(principal.issuer.url).origin;
      if (project && job) runUrl = `${origin}/${project}/-/jobs/${job}`;
      else if (project && pipeline) runUrl = `${origin}/${project}/-/pipelines/${pipeline}`;
    }
  } catch {
    // An issuer URL that does not parse names no run: leave it out.
  }
  return {
    ...base,
    platform: principal.issuer.platform,
    ...(actor ? { actor } : {}),
    ...(actorId ? { actorId } : {}),
    ...(runUrl ? { runUrl } : {}),
  };
}
