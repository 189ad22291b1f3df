/** Where and how a promotion's digest is written into a GitOps repository's file. */
export type GitopsTarget =
  | {
      kind: "kustomize";
      path: string;
      /** The `images[].name` to match. */
      image: string;
      /** Keep `newTag` beside the digest instead of removing it. */
      keepTag?: boolean;
    }
  | {
      kind: "helm-values";
      path: string;
      /** One reference path, e.g. "image" or "web.image": the value becomes `repo@sha256:…`. */
      reference?: string;
      /** Or separate paths: the repository (optional) and the digest. */
      repository?: string;
      digest?: string;
      /** The tag's path: cleared to `""` when given, left alone when not. */
      tag?: string;
    }
  | {
      kind: "yaml";
      path: string;
      /** Selects a document of a multi-document file; absent: the only document. */
      document?: { kind?: string; name?: string };
      /** Dotted path with list selectors, e.g. `spec.template.spec.containers[name=web].image`. */
      field: string;
      /** What to write: `reference` (repo@digest, the default) or `digest` only. */
      value?: "reference" | "digest";
    };

/** One edit: the file's text, its target, and what to pin. */
export interface EditInput {
  text: string;
  target: GitopsTarget;
  /** The target repository, `host/path`. */
  repository: string;
  /** `sha256:…` */
  digest: string;
}

/** The outcome of an edit; `changed` only after the minimal-diff proof held. */
export type EditResult =
  | {
      status: "changed";
      text: string;
      /** 1-based lines of the original that differ (changed or removed; added lines have no number there). */
      changedLines: number[];
    }
  /** The file already pins this digest: nothing to commit. */
  | { status: "unchanged" }
  | {
      status: "refused";
      reason: "gitops_path_missing" | "gitops_unsafe_edit" | "gitops_parse_failed" | "gitops_ambiguous";
      message: string;
    };
