import { readFileSync } from "node:fs";
import type { GitopsTarget } from "../../src/gitops/edit.ts";

/** The repository and digest every case pins. */
export const REPOSITORY = "registry.example.com/shop/web";
export const DIGEST = `sha256:${"a".repeat(64)}`;

const FIXTURES = new URL("./fixtures/", import.meta.url);

/** A fixture file's text, byte for byte (CRLF kept). */
export function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), "utf8");
}

type TargetOf<K> = K extends GitopsTarget ? Omit<K, "path"> : never;

/** An edit that must succeed: its golden output is `fixtures/expected/<name>.yaml`. */
export interface ChangedCase {
  name: string;
  file: string;
  target: TargetOf<GitopsTarget>;
  /** 1-based lines of the original that differ. */
  changedLines: number[];
}

export const CHANGED_CASES: ChangedCase[] = [
  {
    name: "kustomize-web",
    file: "kustomization.yaml",
    target: { kind: "kustomize", image: "web" },
    // newTag and the comment yaml attaches to it go; newName and digest are added after `name`.
    changedLines: [12, 13],
  },
  {
    name: "kustomize-api",
    file: "kustomization.yaml",
    target: { kind: "kustomize", image: "api" },
    changedLines: [17, 18, 19],
  },
  {
    name: "kustomize-worker-keep-tag",
    file: "kustomization.yaml",
    target: { kind: "kustomize", image: "worker", keepTag: true },
    changedLines: [22],
  },
  {
    name: "kustomize-flow-first",
    file: "kustomization-flow.yaml",
    target: { kind: "kustomize", image: "web" },
    changedLines: [1],
  },
  {
    name: "kustomize-flow-last",
    file: "kustomization-flow.yaml",
    target: { kind: "kustomize", image: "api" },
    changedLines: [1],
  },
  {
    name: "kustomize-crlf",
    file: "kustomization-crlf.yaml",
    target: { kind: "kustomize", image: "web" },
    changedLines: [4],
  },
  {
    name: "kustomize-unreferenced-anchor",
    file: "kustomization-anchors.yaml",
    target: { kind: "kustomize", image: "api" },
    changedLines: [8],
  },
  {
    name: "helm-web-separate",
    file: "values.yaml",
    target: {
      kind: "helm-values",
      repository: "web.image.repository",
      digest: "web.image.digest",
      tag: "web.image.tag",
    },
    changedLines: [7, 8, 9],
  },
  {
    name: "helm-worker-separate-tag-kept",
    file: "values.yaml",
    target: { kind: "helm-values", repository: "worker.image.repository", digest: "worker.image.digest" },
    changedLines: [15, 17],
  },
  {
    name: "helm-proxy-reference",
    file: "values.yaml",
    target: { kind: "helm-values", reference: "proxy.image" },
    changedLines: [21],
  },
  {
    name: "helm-nested-list-reference",
    file: "values.yaml",
    target: { kind: "helm-values", reference: "proxy.sidecars[name=logs].image" },
    changedLines: [26],
  },
  {
    name: "helm-crlf-empty-digest",
    file: "values-crlf.yaml",
    target: { kind: "helm-values", digest: "image.digest", tag: "image.tag" },
    changedLines: [3, 4],
  },
  {
    name: "yaml-deployment-web",
    file: "manifests.yaml",
    target: {
      kind: "yaml",
      document: { kind: "Deployment", name: "web" },
      field: "spec.template.spec.containers[name=web].image",
    },
    changedLines: [13],
  },
  {
    name: "yaml-single-quoted",
    file: "manifests.yaml",
    target: {
      kind: "yaml",
      document: { kind: "Deployment", name: "web" },
      field: "spec.template.spec.containers[name=proxy].image",
    },
    changedLines: [16],
  },
  {
    name: "yaml-annotation-digest",
    file: "manifests.yaml",
    target: {
      kind: "yaml",
      document: { kind: "Deployment", name: "api" },
      field: 'metadata.annotations["ferry.dev/digest"]',
      value: "digest",
    },
    changedLines: [32],
  },
  {
    name: "yaml-index-selector",
    file: "manifests.yaml",
    target: {
      kind: "yaml",
      document: { kind: "Deployment", name: "api" },
      field: "spec.template.spec.containers[1].image",
    },
    changedLines: [40],
  },
];
