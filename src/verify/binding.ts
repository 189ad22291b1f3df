import type { CryptoVerdict, Refusal } from "./entity.ts";
import type { SignedContent } from "./statement.ts";
import type { TrustContext } from "./trust-context.ts";

/** The app a repository (`host/path`, as `apps[].images` lists it) belongs to, if any. */
export type AppOf = (repository: string) => string | undefined;

/** Where a verification reads: the repository, and the apps that own repositories. */
export interface RepositoryScope {
  /** `host/path` of the image being verified. */
  repository: string;
  appOf: AppOf;
}

/** Indexes `apps[].images`: repository → app name. */
export function appIndex(apps: readonly { name: string; images: Record<string, string> }[]): AppOf {
  const byRepository = new Map<string, string>();
  for (const app of apps) for (const repo of Object.values(app.images)) byRepository.set(repo, app.name);
  return (repository) => byRepository.get(repository);
}

/**
 * The repositories the signed content names for `digest`: the simple-signing payload's
 * `critical.identity.docker-reference`, or the names of the statement subjects with this digest.
 * A message signature over the manifest names none.
 */
function signedRepositories(content: SignedContent, digest: string): string[] {
  switch (content.kind) {
    case "simple-signing":
      return content.dockerReference === undefined ? [] : [content.dockerReference];
    case "statement": {
      const [algorithm, hex] = digest.split(":");
      return content.statement.subject
        .filter((s) => s.digest[algorithm!]?.toLowerCase() === hex && s.name !== undefined)
        .map((s) => s.name!);
    }
    default:
      return [];
  }
}

/**
 * Ferry's own key signs for every app, so the key alone does not say which app an image was signed
 * for: the signed repository does. A vouch by an authority that binds to apps (`key: ferry`)
 * stands only when a repository the content names belongs to the same app as the repository being
 * verified; otherwise it becomes a refusal (`repository_not_in_app`). A promotion copies within an
 * app (staging → production), so it keeps the signature valid; a copy into another app's
 * repository, or into one no app lists, does not. Other authorities are bound by digest only.
 */
export function bindToApp(
  verdict: CryptoVerdict,
  content: SignedContent,
  digest: string,
  ctx: TrustContext,
  scope: RepositoryScope | undefined,
): CryptoVerdict {
  const binds = (name: string) => {
    const a = ctx.authorities.get(name);
    return a?.kind === "key" && a.bindsApp === true;
  };
  if (!verdict.vouches.some((v) => binds(v.authority))) return verdict;
  const signed = signedRepositories(content, digest);
  const app = scope ? scope.appOf(scope.repository) : undefined;
  const ok = app !== undefined && signed.some((r) => scope!.appOf(r) === app);
  if (ok) return verdict;
  const where = scope?.repository ?? "this repository";
  const message =
    signed.length === 0
      ? `signed with Ferry's key but names no repository, so it is bound to no app`
      : app === undefined
        ? `signed for ${signed.join(", ")}; ${where} belongs to no app in apps[].images`
        : `signed for ${signed.join(", ")}, which is not a repository of app ${app} (${where})`;
  const refusals: Refusal[] = [...verdict.refusals];
  const vouches = verdict.vouches.filter((v) => {
    if (!binds(v.authority)) return true;
    refusals.push({ authority: v.authority, reason: "repository_not_in_app", message });
    return false;
  });
  return { vouches, refusals };
}
