// docs/getting-started.md: the config it builds up in steps 4 to 10 is one valid config, and the
// Helm values of step 11, holding that config, pass `helm lint --strict` and render a ConfigMap
// that `ferry config check` accepts. Read from the page itself, so the two cannot drift apart.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { runHelm } from "../support/helm.ts";
import { mergeSnippet, REPO, readRepoFile } from "./support.ts";

const PAGE = readRepoFile("docs/getting-started.md");

/** The body of the page's section `## <n>. …`. */
function section(n: number): string {
  const parts = PAGE.split(/^## /m);
  const found = parts.filter((p) => p.startsWith(`${n}. `));
  if (found.length !== 1) throw new Error(`expected one section "## ${n}. …", found ${found.length}`);
  return found[0] as string;
}

/** The ```yaml blocks of a text, in order. */
function yamlBlocks(text: string): string[] {
  return [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** The relative links of a Markdown file that point at no file, or at no heading of it. */
function brokenLinks(relative: string, text = readRepoFile(relative)): string[] {
  const broken: string[] = [];
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (target === undefined || /^[a-z]+:/.test(target)) continue;
    const [file = "", anchor] = target.split("#");
    const resolved = file === "" ? relative : path.join(path.dirname(relative), file);
    if (!existsSync(path.join(REPO, resolved))) {
      broken.push(target);
      continue;
    }
    if (anchor === undefined) continue;
    const headings = [...readRepoFile(resolved).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] as string));
    if (!headings.includes(anchor)) broken.push(target);
  }
  return broken;
}

// Steps 4 and 5 each hold part of one `issuers:` list: the page's blocks read as one file.
const assembled = [4, 5, 6, 7, 8, 9, 10].flatMap((n) => yamlBlocks(section(n))).join("");
const env = {
  FERRY_DATABASE_URL: "postgres://ferry:secret@postgres.db.svc:5432/ferry?sslmode=verify-full",
  GHCR_USERNAME: "acme-ferry",
  GHCR_TOKEN: "x",
  GITOPS_TOKEN: "y",
  FERRY_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
};

describe("docs/getting-started.md", () => {
  it("links only to files and headings that exist, as do the examples' READMEs", () => {
    for (const page of [
      "docs/getting-started.md",
      "examples/github-actions/README.md",
      "examples/gitlab-ci/README.md",
    ])
      expect(brokenLinks(page), page).toEqual([]);
    // The check itself finds a missing file and a missing heading.
    const links =
      "[a](nope.md) [b](install.md#no-such-heading) [c](install.md#in-a-pipeline) [d](#1-what-you-need)";
    expect(brokenLinks("docs/getting-started.md", links)).toEqual(["nope.md", "install.md#no-such-heading"]);
  });

  it("assembles, from steps 4 to 10, one config that passes `ferry config check` and `ferry policy lint`", async () => {
    const config = parse(assembled) as Record<string, unknown>;
    expect(Object.keys(config)).toEqual([
      "issuers",
      "registries",
      "trust",
      "environments",
      "apps",
      "gitops",
      "verification",
      "audit",
      "notifications",
    ]);
    const merged = mergeSnippet(assembled);
    const check = await merged.check(env);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
    const lint = await merged.lint(env);
    expect(lint.stdout).toMatch(/: 0 warning\(s\)\n$/);
  });

  it("gives Helm values (step 11) that, holding that config, pass `helm lint --strict` and render a config Ferry accepts", async () => {
    const [valuesBlock] = yamlBlocks(section(11));
    const values = parse(valuesBlock as string) as { config: Record<string, unknown> };
    // The page writes `[ … ]` where a step's blocks go: put them there, and nothing else.
    const config = parse(assembled) as Record<string, unknown>;
    const placeholders = Object.keys(values.config).filter((k) =>
      JSON.stringify(values.config[k]).includes("…"),
    );
    expect(placeholders).toEqual(["issuers", "registries", "trust", "environments", "apps", "notifications"]);
    for (const key of placeholders) values.config[key] = config[key];
    expect(values.config.gitops).toEqual(config.gitops);
    // The image digest is the one value the page cannot know.
    const image = values as unknown as { image: { digest: string } };
    expect(image.image.digest).toBe("sha256:…");
    image.image.digest = `sha256:${"ab".repeat(32)}`;

    const dir = mkdtempSync(path.join(tmpdir(), "ferry-getting-started-"));
    const file = path.join(dir, "values-production.yaml");
    writeFileSync(file, stringify(values));
    const chart = path.join(REPO, "helm/ferry");
    const lint = await runHelm(["lint", "--strict", chart, "-f", file]);
    expect(lint.stdout + lint.stderr).toMatch(/0 chart\(s\) failed/);
    expect(lint.code).toBe(0);
    const rendered = await runHelm(["template", "ferry", chart, "-n", "ferry", "-f", file]);
    expect(rendered.stderr).toBe("");
    const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as Record<string, unknown> | null);
    const configMap = docs.find((d) => d?.kind === "ConfigMap") as { data: Record<string, string> };
    const ferryYaml = parse(configMap.data["ferry.yaml"] as string) as Record<string, unknown>;
    expect(ferryYaml.store).toEqual({ postgres: "${FERRY_DATABASE_URL}" });
    expect(ferryYaml.keys).toEqual({ signing: "/etc/ferry/keys/signing.pem" });
    // Checked as the pod loads it, with the key where the check's folder has one.
    const check = await mergeSnippet(stringify({ ...ferryYaml, keys: { signing: "./signing.pem" } })).check(
      env,
    );
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
  });
});
