import { describe, expect, it } from "vitest";
import { parseSource } from "../../src/gitops/edit/document.ts";
import { planHelm } from "../../src/gitops/edit/helm-values.ts";
import { planKustomize } from "../../src/gitops/edit/kustomize.ts";
import { type EditOp, render } from "../../src/gitops/edit/ops.ts";
import { prove } from "../../src/gitops/edit/proof.ts";
import { Refusal } from "../../src/gitops/edit/refusal.ts";
import { applyEdit, type GitopsTarget, parseFieldPath, readPinned } from "../../src/gitops/edit.ts";
import { CHANGED_CASES, type ChangedCase, DIGEST, fixture, REPOSITORY } from "./edit-cases.ts";

function targetOf(file: string, target: ChangedCase["target"]): GitopsTarget {
  return { ...target, path: `deploy/${file}` } as GitopsTarget;
}

function edit(file: string, target: ChangedCase["target"], text = fixture(file)) {
  return applyEdit({ text, target: targetOf(file, target), repository: REPOSITORY, digest: DIGEST });
}

function changed(result: ReturnType<typeof applyEdit>) {
  if (result.status !== "changed") throw new Error(`expected a change, got ${JSON.stringify(result)}`);
  return result;
}

/**
 * The 1-based lines of `before` that a longest common subsequence with `after` does not keep: an
 * independent line diff, so the property test does not trust the editor's own bookkeeping.
 */
function linesNotKept(before: string[], after: string[]): number[] {
  const n = before.length;
  const m = after.length;
  const table = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i]![j] =
        before[i] === after[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
    }
  }
  const dropped: number[] = [];
  let i = 0;
  let j = 0;
  while (i < n) {
    if (j < m && before[i] === after[j]) {
      i++;
      j++;
    } else if (j < m && table[i]![j + 1]! >= table[i + 1]![j]!) j++;
    else dropped.push(++i);
  }
  return dropped;
}

describe("fixtures", () => {
  // A formatter run over test/ would rewrite them (fixtures/biome.json keeps Biome out).
  it("are byte for byte as written: flow without padding, quotes, extra spaces, CRLF", () => {
    expect(fixture("kustomization-flow.yaml")).toContain("[{name: web, newTag: v1}, {name: api");
    expect(fixture("kustomization.yaml")).toContain(
      "'registry.example.com/shop/api-old'   # quoted on purpose",
    );
    expect(fixture("kustomization-crlf.yaml")).toContain("images:\r\n  - name: web\r\n");
    expect(fixture("values.yaml")).toContain('tag: "1.4.2"  # cleared');
  });
});

describe("applyEdit: golden outputs", () => {
  it.each(CHANGED_CASES)("$name: exact text and changed lines", (c) => {
    const result = changed(edit(c.file, c.target));
    expect(result.text).toBe(fixture(`expected/${c.name}.yaml`));
    expect(result.changedLines).toEqual(c.changedLines);
  });

  it("keeps CRLF line endings on changed and added lines", () => {
    const result = changed(edit("kustomization-crlf.yaml", { kind: "kustomize", image: "web" }));
    expect(
      result.text
        .split("\n")
        .slice(0, -1)
        .every((line) => line.endsWith("\r")),
    ).toBe(true);
    expect(result.text).not.toMatch(/[^\r]\n/);
  });
});

describe("property: only the reported lines differ", () => {
  it.each(CHANGED_CASES)("$name", (c) => {
    const original = fixture(c.file);
    const result = changed(edit(c.file, c.target));
    const before = original.split("\n");
    const after = result.text.split("\n");
    expect(linesNotKept(before, after)).toEqual(result.changedLines);
    if (before.length === after.length) {
      const differing = before.flatMap((line, i) => (line === after[i] ? [] : [i + 1]));
      expect(differing).toEqual(result.changedLines);
    }
  });

  it.each(CHANGED_CASES)("$name: editing the result again is unchanged, and readPinned sees the pin", (c) => {
    const result = changed(edit(c.file, c.target));
    expect(edit(c.file, c.target, result.text)).toEqual({ status: "unchanged" });
    const pinned = readPinned(result.text, targetOf(c.file, c.target));
    expect(pinned?.digest).toBe(DIGEST);
    const digestOnly =
      (c.target.kind === "yaml" && c.target.value === "digest") ||
      (c.target.kind === "helm-values" &&
        c.target.repository === undefined &&
        c.target.reference === undefined);
    if (!digestOnly) expect(pinned?.repository).toBe(REPOSITORY);
  });
});

describe("applyEdit: edges", () => {
  it("adds keys after a last line that has no newline, and the file still ends without one", () => {
    const result = changed(
      edit("kustomization.yaml", { kind: "kustomize", image: "web" }, "images:\n- name: web"),
    );
    expect(result.text).toBe(`images:\n- name: web\n  newName: ${REPOSITORY}\n  digest: ${DIGEST}`);
    expect(result.changedLines).toEqual([]);
  });

  it("rewrites a value on a last line without a newline", () => {
    const result = changed(edit("values.yaml", { kind: "helm-values", reference: "image" }, "image: x/y:1"));
    expect(result).toEqual({ status: "changed", text: `image: ${REPOSITORY}@${DIGEST}`, changedLines: [1] });
  });

  it("fills an empty value and a null one", () => {
    const text = "image:\n  repository: ~\n  digest:\n";
    const result = changed(
      edit(
        "values.yaml",
        { kind: "helm-values", repository: "image.repository", digest: "image.digest" },
        text,
      ),
    );
    expect(result.text).toBe(`image:\n  repository: ${REPOSITORY}\n  digest: ${DIGEST}\n`);
    expect(result.changedLines).toEqual([2, 3]);
  });

  it("keeps a document's `---` markers and directives", () => {
    const text = "%YAML 1.2\n---\n# values\nimage: a/b:1 # note\n...\n";
    const result = changed(edit("values.yaml", { kind: "helm-values", reference: "image" }, text));
    expect(result.text).toBe(`%YAML 1.2\n---\n# values\nimage: ${REPOSITORY}@${DIGEST} # note\n...\n`);
  });

  it("adds keys after the `name` of a flow entry that has only a name", () => {
    const result = changed(
      edit("kustomization.yaml", { kind: "kustomize", image: "web" }, "images: [{name: web}]\n"),
    );
    expect(result.text).toBe(`images: [{name: web, newName: ${REPOSITORY}, digest: ${DIGEST}}]\n`);
  });

  it("refuses to remove a newTag that shares the list item's line", () => {
    const text = "images:\n  - newTag: v1\n    name: web\n";
    const result = edit("kustomization.yaml", { kind: "kustomize", image: "web" }, text);
    expect(result).toMatchObject({ status: "refused", reason: "gitops_unsafe_edit" });
    expect(result.status === "refused" && result.message).toContain("images[name=web].newTag");
  });

  it("does not add newName when the image's name already is the repository", () => {
    const text = `images:\n  - name: ${REPOSITORY}\n    newTag: v1\n`;
    const result = changed(edit("kustomization.yaml", { kind: "kustomize", image: REPOSITORY }, text));
    expect(result.text).toBe(`images:\n  - name: ${REPOSITORY}\n    digest: ${DIGEST}\n`);
  });
});

describe("applyEdit: already pinned", () => {
  it("is unchanged when newName and digest already pin, even with a newTag left beside them", () => {
    const text = `images:\n  - name: web\n    newName: ${REPOSITORY}\n    digest: ${DIGEST}\n    newTag: v1\n`;
    expect(edit("kustomization.yaml", { kind: "kustomize", image: "web" }, text)).toEqual({
      status: "unchanged",
    });
  });

  it("is unchanged when a digest-only target already holds the digest, whatever the repository", () => {
    const text = `image:\n  repository: other.example.com/x\n  digest: "${DIGEST}"\n`;
    expect(edit("values.yaml", { kind: "helm-values", digest: "image.digest" }, text)).toEqual({
      status: "unchanged",
    });
  });

  it("is changed when only the repository differs", () => {
    const text = `image: other.example.com/shop/web@${DIGEST}\n`;
    const result = changed(edit("values.yaml", { kind: "helm-values", reference: "image" }, text));
    expect(result.text).toBe(`image: ${REPOSITORY}@${DIGEST}\n`);
  });
});

type Refused = [
  name: string,
  file: string,
  target: ChangedCase["target"],
  reason: string,
  yamlPath: string,
  text?: string,
];

const REFUSALS: Refused[] = [
  [
    "kustomize: no entry for the image",
    "kustomization.yaml",
    { kind: "kustomize", image: "nope" },
    "gitops_path_missing",
    "images[name=nope]",
  ],
  [
    "kustomize: no images list",
    "no-images.yaml",
    { kind: "kustomize", image: "web" },
    "gitops_path_missing",
    "images[name=web]",
  ],
  [
    "kustomize: the image twice",
    "kustomization-duplicates.yaml",
    { kind: "kustomize", image: "web" },
    "gitops_ambiguous",
    "images[name=web]",
  ],
  [
    "kustomize: entry an alias uses",
    "kustomization-anchors.yaml",
    { kind: "kustomize", image: "web" },
    "gitops_unsafe_edit",
    "images[name=web]",
  ],
  [
    "helm: key absent",
    "values.yaml",
    { kind: "helm-values", digest: "web.image.sha" },
    "gitops_path_missing",
    "web.image.sha",
  ],
  [
    "helm: parent absent",
    "values.yaml",
    { kind: "helm-values", reference: "api.image" },
    "gitops_path_missing",
    "api.image",
  ],
  [
    "helm: through an alias",
    "values.yaml",
    { kind: "helm-values", reference: "copy.image" },
    "gitops_unsafe_edit",
    "copy.image",
  ],
  [
    "helm: inside an aliased anchor",
    "values.yaml",
    { kind: "helm-values", reference: "shared.image" },
    "gitops_unsafe_edit",
    "shared.image",
  ],
  [
    "helm: a number there",
    "values.yaml",
    { kind: "helm-values", digest: "web.service.port" },
    "gitops_unsafe_edit",
    "web.service.port",
  ],
  [
    "helm: a map there",
    "values.yaml",
    { kind: "helm-values", reference: "web.image" },
    "gitops_unsafe_edit",
    "web.image",
  ],
  [
    "helm: a bad path",
    "values.yaml",
    { kind: "helm-values", reference: "web..image" },
    "gitops_path_missing",
    "web..image",
  ],
  [
    "helm: neither form",
    "values.yaml",
    { kind: "helm-values", tag: "web.image.tag" },
    "gitops_path_missing",
    "reference",
  ],
  [
    "helm: block scalar",
    "block-scalar.yaml",
    { kind: "helm-values", reference: "image.reference" },
    "gitops_unsafe_edit",
    "image.reference",
  ],
  [
    "yaml: no matching document",
    "manifests.yaml",
    { kind: "yaml", document: { kind: "Deployment", name: "nope" }, field: "spec" },
    "gitops_path_missing",
    'metadata.name "nope"',
  ],
  [
    "yaml: several matching documents",
    "manifests.yaml",
    { kind: "yaml", document: { name: "web" }, field: "spec" },
    "gitops_ambiguous",
    'metadata.name "web"',
  ],
  [
    "yaml: no selector on a multi-document file",
    "manifests.yaml",
    { kind: "yaml", field: "spec" },
    "gitops_ambiguous",
    "document: {kind, name}",
  ],
  [
    "yaml: list selector matches two",
    "manifests.yaml",
    {
      kind: "yaml",
      document: { kind: "Deployment", name: "api" },
      field: "spec.template.spec.containers[name=api].image",
    },
    "gitops_ambiguous",
    "containers[name=api]",
  ],
  [
    "yaml: list selector matches none",
    "manifests.yaml",
    {
      kind: "yaml",
      document: { kind: "Deployment", name: "web" },
      field: "spec.template.spec.containers[name=x].image",
    },
    "gitops_path_missing",
    "containers[name=x]",
  ],
  [
    "yaml: index out of range",
    "manifests.yaml",
    {
      kind: "yaml",
      document: { kind: "Deployment", name: "web" },
      field: "spec.template.spec.containers[5].image",
    },
    "gitops_path_missing",
    "containers[5]",
  ],
  [
    "yaml: key on a list",
    "manifests.yaml",
    { kind: "yaml", document: { kind: "Service" }, field: "spec.ports.port" },
    "gitops_path_missing",
    "spec.ports",
  ],
  [
    "helm: two paths, one value",
    "values.yaml",
    { kind: "helm-values", repository: "web.image.digest", digest: "web.image.digest" },
    "gitops_unsafe_edit",
    "web.image.digest and web.image.digest name the same value",
  ],
  [
    "parse: unclosed flow map",
    "broken.yaml",
    { kind: "kustomize", image: "web" },
    "gitops_parse_failed",
    "line 3",
  ],
  [
    "parse: duplicate key",
    "duplicate-keys.yaml",
    { kind: "helm-values", digest: "image.digest" },
    "gitops_parse_failed",
    "line 3",
  ],
  [
    "parse: empty file",
    "empty.yaml",
    { kind: "yaml", field: "image" },
    "gitops_path_missing",
    "no YAML document",
    "",
  ],
];

describe("applyEdit: refusals", () => {
  it.each(REFUSALS)("%s", (_name, file, target, reason, yamlPath, text) => {
    const result = edit(file, target, text ?? fixture(file));
    expect(result.status).toBe("refused");
    if (result.status !== "refused") return;
    expect(result.reason).toBe(reason);
    expect(result.message).toContain(`deploy/${file}`);
    expect(result.message).toContain(yamlPath);
    // Every refusal says what to do about it.
    expect(result.message).toMatch(/; (add|fix|point|replace|select|keep|put|write|make|use)\b/i);
  });

  it("a refused edit leaves readPinned undefined when the path is absent, and reads what is there", () => {
    expect(
      readPinned(fixture("values.yaml"), targetOf("values.yaml", { kind: "helm-values", digest: "x.y" })),
    ).toBe(undefined);
    expect(
      readPinned(fixture("broken.yaml"), targetOf("broken.yaml", { kind: "kustomize", image: "web" })),
    ).toBe(undefined);
    expect(
      readPinned(
        fixture("values.yaml"),
        targetOf("values.yaml", { kind: "helm-values", reference: "proxy.image" }),
      ),
    ).toEqual({ repository: "registry.example.com/shop/proxy" });
    expect(
      readPinned(
        fixture("values.yaml"),
        targetOf("values.yaml", { kind: "helm-values", reference: "proxy.sidecars[0].image" }),
      ),
    ).toEqual({ repository: "registry.example.com/shop/metrics", digest: `sha256:${"3".repeat(64)}` });
    expect(
      readPinned(
        fixture("kustomization.yaml"),
        targetOf("kustomization.yaml", { kind: "kustomize", image: "web" }),
      ),
    ).toEqual({
      repository: "web",
    });
    expect(
      readPinned(
        fixture("values.yaml"),
        targetOf("values.yaml", {
          kind: "helm-values",
          repository: "web.image.repository",
          digest: "web.image.digest",
        }),
      ),
    ).toEqual({ repository: "registry.example.com/shop/web-staging" });
  });

  it("throws on a caller's bug: a tag or a short digest is never written", () => {
    const target = targetOf("values.yaml", { kind: "helm-values", reference: "proxy.image" });
    const text = fixture("values.yaml");
    expect(() => applyEdit({ text, target, repository: REPOSITORY, digest: "latest" })).toThrow(TypeError);
    expect(() => applyEdit({ text, target, repository: `${REPOSITORY}:1.0`, digest: DIGEST })).toThrow(
      TypeError,
    );
  });
});

describe("the minimal-diff proof", () => {
  it.each([
    ["a plain scalar folded over two lines", "multiline.yaml", "image.repository spans lines 3-4"],
    [
      "a double-quoted scalar continued on the next line",
      "multiline-quoted.yaml",
      "image.reference spans lines 2-3",
    ],
  ])("refuses %s: writing it on one line would remove a line", (_name, file, detail) => {
    const target: ChangedCase["target"] =
      file === "multiline.yaml"
        ? { kind: "helm-values", repository: "image.repository", digest: "image.digest" }
        : { kind: "helm-values", reference: "image.reference" };
    const result = edit(file, target);
    expect(result).toMatchObject({ status: "refused", reason: "gitops_unsafe_edit" });
    expect(result.status === "refused" && result.message).toContain(detail);
    expect(result.status === "refused" && result.message).toContain(`deploy/${file}`);
  });

  /** Plans and renders an edit, then lets `tamper` spoil the text before the proof sees it. */
  function proveTampered(
    file: string,
    plan: "kustomize-web" | "kustomize-flow" | "helm-proxy",
    tamper?: (text: string) => string,
  ) {
    const source = parseSource(`deploy/${file}`, fixture(file));
    let ops: EditOp[];
    if (plan === "helm-proxy") {
      ops = planHelm(
        source,
        { kind: "helm-values", path: file, reference: "proxy.image" },
        REPOSITORY,
        DIGEST,
      );
    } else {
      ops = planKustomize(source, { kind: "kustomize", path: file, image: "web" }, REPOSITORY, DIGEST);
    }
    const rendered = render(source, ops);
    const tampered = tamper ? tamper(rendered.text) : rendered.text;
    // A tamper that matches nothing would prove nothing.
    if (tamper && tampered === rendered.text) throw new Error("the tamper changed nothing");
    return () => prove(source, ops, tampered, rendered.allowance);
  }

  it("passes the editor's own output", () => {
    expect(proveTampered("values.yaml", "helm-proxy")()).toEqual([21]);
    expect(proveTampered("kustomization.yaml", "kustomize-web")()).toEqual([12, 13]);
  });

  it.each([
    [
      "an untouched comment line changes",
      "values.yaml",
      "helm-proxy",
      (t: string) => t.replace("# One-reference style.", "# One reference style."),
    ],
    [
      "the edited line's comment changes",
      "values.yaml",
      "helm-proxy",
      (t: string) => t.replace("# a tag today", "# a digest now"),
    ],
    [
      "the edited scalar loses its quote style",
      "values.yaml",
      "helm-proxy",
      (t: string) => t.replace(`"${REPOSITORY}@${DIGEST}"`, `'${REPOSITORY}@${DIGEST}'`),
    ],
    [
      "the edited scalar gets another value",
      "values.yaml",
      "helm-proxy",
      (t: string) => t.replace(`${REPOSITORY}@`, `${REPOSITORY}x@`),
    ],
    [
      "a neighbour on a flow line changes",
      "kustomization-flow.yaml",
      "kustomize-flow",
      (t: string) => t.replace("{name: api", "{name: apx"),
    ],
    [
      "a CRLF line loses its CR",
      "kustomization-crlf.yaml",
      "kustomize-web",
      (t: string) => t.replace(`${REPOSITORY}\r\n`, `${REPOSITORY}\n`),
    ],
    [
      "an added key lands in another place",
      "kustomization.yaml",
      "kustomize-web",
      (t: string) =>
        t
          .replace(`    newName: ${REPOSITORY}\n`, "")
          .replace("  - name: api\n", `  - name: api\n    newName: ${REPOSITORY}\n`),
    ],
    ["an extra line appears", "kustomization.yaml", "kustomize-web", (t: string) => `${t}# extra\n`],
    ["a line goes missing", "values.yaml", "helm-proxy", (t: string) => t.replace("replicaCount: 2\n", "")],
  ] as const)("refuses when %s", (_name, file, plan, tamper) => {
    const run = proveTampered(file, plan, tamper);
    expect(run).toThrow(Refusal);
    try {
      run();
    } catch (error) {
      expect((error as Refusal).reason).toBe("gitops_unsafe_edit");
      expect((error as Refusal).message).toContain(`deploy/${file}`);
    }
  });
});

describe("parseFieldPath", () => {
  it.each([
    ["image", [{ type: "key", key: "image" }]],
    [
      "spec.template.spec.containers[name=web].image",
      [
        { type: "key", key: "spec" },
        { type: "key", key: "template" },
        { type: "key", key: "spec" },
        { type: "key", key: "containers" },
        { type: "match", field: "name", value: "web" },
        { type: "key", key: "image" },
      ],
    ],
    [
      'metadata.annotations["app.kubernetes.io/name"]',
      [
        { type: "key", key: "metadata" },
        { type: "key", key: "annotations" },
        { type: "key", key: "app.kubernetes.io/name" },
      ],
    ],
    [
      "items[0][2].x",
      [
        { type: "key", key: "items" },
        { type: "index", index: 0 },
        { type: "index", index: 2 },
        { type: "key", key: "x" },
      ],
    ],
    [
      'env[name="MY VAR"].value',
      [
        { type: "key", key: "env" },
        { type: "match", field: "name", value: "MY VAR" },
        { type: "key", key: "value" },
      ],
    ],
    [
      "web-app.image_ref",
      [
        { type: "key", key: "web-app" },
        { type: "key", key: "image_ref" },
      ],
    ],
  ])("parses %s", (field, segments) => {
    expect(parseFieldPath(field)).toEqual({ ok: true, segments });
  });

  it.each([
    ["", "empty"],
    ["a..b", "a key must follow"],
    [".a", "expected a key"],
    ["a.", "a key must follow"],
    ["a[", "not closed"],
    ["a[name=]", "empty"],
    ["a[=web]", "plain key"],
    ["a[01]", "expected `[index]`"],
    ["a b", "expected `.` or `[`"],
    ['a["unterminated]', "unterminated"],
    ["a[name=web]b", "expected `.` or `[`"],
  ])("rejects %j", (field, message) => {
    const result = parseFieldPath(field);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain(message);
  });
});
