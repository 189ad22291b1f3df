import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubClaims } from "../identity/fixtures.ts";
import { callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import type { Json } from "../support/ferry-serve.ts";
import { git, startGitServer, type TestGitServer } from "../support/git-server.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

const AUD = "https://ferry.test";
const TOKEN = "concurrency-t0ken";
const APPS = 50;
/** Apps 0..SHARED-1 are entries of one kustomization; the others each have a file of their own. */
const SHARED = 25;

let source: TestRegistry;
let github: OidcIssuer;
let gitServer: TestGitServer;
let images: SignedImage[];
let ferry: TestFerry;
let work: string;

const name = (i: number) => `app-${i}`;
const bare = () => path.join(gitServer.root, "deploy.git");
const gitBare = async (args: string[]) => {
  const r = await git(["--git-dir", bare(), ...args], { home: work });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

function sharedKustomization(): string {
  const entries = Array.from(
    { length: SHARED },
    (_, i) =>
      `  # ${name(i)}\n  - name: ${name(i)}\n    newName: old.example/${name(i)}\n    newTag: v${i}\n`,
  );
  return `# shared by ${SHARED} apps\nkind: Kustomization\nimages:\n${entries.join("")}`;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "ferry-gitops-50-"));
  [source, github, gitServer] = await Promise.all([
    startRegistry(),
    startOidcIssuer(),
    startGitServer({ username: "ferry", password: TOKEN }),
  ]);
  const first = await pushSignedImage(source, "prod/web", work, { bundle: false });
  const second = await pushSignedImage(source, "prod/web", work, { bundle: false, keys: first.keys });
  images = [first, second];
  expect(second.digest).not.toBe(first.digest);
  const files: Record<string, string> = {
    "shared/kustomization.yaml": sharedKustomization(),
    "notes.txt": "0\n",
  };
  for (let i = SHARED; i < APPS; i++)
    files[`apps/${name(i)}.yaml`] =
      `# ${name(i)}\nspec:\n  containers:\n    - name: main\n      image: old.example/${name(i)}:v1 # pinned\n`;
  await gitServer.createRepo("deploy", files);
  const repo = `${source.host}/prod/web`;
  ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [loopbackIssuerConfig("github", github, AUD, { platform: "github" })],
    registries: [{ url: source.url }],
    trust: { authorities: [{ name: "ci", key: first.keys.publicKeyPath }] },
    // The evidence step (docs/evidence.md) is not what these tests are about.
    environments: [
      { name: "production", require: { signature: { authorities: ["ci"] } }, evidence: { summary: false } },
    ],
    promotion: { pollInterval: "200ms" },
    gitops: { pushRetries: 10 },
    apps: Array.from({ length: APPS }, (_, i) => ({
      name: name(i),
      images: { production: repo },
      pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      gitops: {
        production: {
          repo: `${gitServer.baseUrl}/deploy.git`,
          auth: { token: TOKEN, username: "ferry" },
          ...(i < SHARED
            ? { path: "shared/kustomization.yaml", kind: "kustomize", image: name(i) }
            : { path: `apps/${name(i)}.yaml`, kind: "yaml", field: "spec.containers[name=main].image" }),
        },
      },
    })),
  });
}, 120_000);

afterAll(async () => {
  await ferry?.close();
  await Promise.all([source?.stop(), github?.stop(), gitServer?.stop()]);
});

/** Another writer: commits to notes.txt in its own clone and pushes, retrying its own rejections. */
async function foreignWriter(commits: number, stop: () => boolean): Promise<string[]> {
  const dir = mkdtempSync(path.join(work, "foreign-"));
  const run = async (args: string[], cwd = path.join(dir, "repo")) => git(args, { cwd, home: dir });
  await run(["clone", "--quiet", gitServer.url("deploy"), "repo"], dir);
  const shas: string[] = [];
  for (let n = 1; n <= commits && !stop(); n++) {
    for (;;) {
      await run(["fetch", "--quiet", "origin", "main"]);
      await run(["reset", "--quiet", "--hard", "origin/main"]);
      const file = path.join(dir, "repo", "notes.txt");
      writeFileSync(file, `${readFileSync(file, "utf8")}${n}\n`);
      await run(["commit", "--quiet", "-am", `foreign ${n}`]);
      if ((await run(["push", "--quiet", "origin", "HEAD:main"])).code === 0) break;
    }
    shas.push((await run(["rev-parse", "HEAD"])).stdout.trim());
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return shas;
}

describe("50 concurrent promotions of different apps into one repository", () => {
  it("all land, history stays linear, no update is lost, each commit touches only its own lines, foreign commits are kept", async () => {
    const before = (await gitBare(["rev-parse", "main"])).trim();
    const started = performance.now();
    const asked = await Promise.all(
      Array.from({ length: APPS }, async (_, i) => {
        const t = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
        const r = await callApi(ferry, t, "POST", "/v1/promotions", {
          app: name(i),
          digest: images[i % 2]!.digest,
          to: "production",
        });
        expect(r.status).toBe(201);
        return r.json.id as string;
      }),
    );
    let finished = false;
    const foreign = foreignWriter(5, () => finished);
    const results = await Promise.all(
      asked.map(async (id) => {
        const t = await github.sign(githubClaims({ iss: github.url, aud: AUD }));
        for (let round = 0; round < 150; round++) {
          const { json } = await callApi(ferry, t, "GET", `/v1/promotions/${id}?wait=5s`);
          if (["promoted", "failed"].includes(json.state as string)) return json as Json;
        }
        throw new Error(`promotion ${id} never finished`);
      }),
    );
    const wall = performance.now() - started;
    finished = true;
    const foreignShas = await foreign;
    console.log(
      `50 concurrent gitops promotions: ${(wall / 1000).toFixed(1)} s wall time, ${foreignShas.length} foreign commits in between`,
    );
    expect(
      results.map((r) => r.state),
      JSON.stringify(results.filter((r) => r.state !== "promoted").map((r) => r.result)),
    ).toEqual(Array(APPS).fill("promoted"));

    // Linear: no merge commits; every commit since the start is Ferry's (one per promotion) or foreign.
    expect((await gitBare(["rev-list", "--merges", `${before}..main`])).trim()).toBe("");
    const shas = (await gitBare(["rev-list", `${before}..main`])).trim().split("\n");
    expect(shas).toHaveLength(APPS + foreignShas.length);
    for (const sha of foreignShas) expect(shas).toContain(sha);

    const byPromotion = new Map(results.map((r, i) => [r.id as string, i]));
    const seen = new Set<number>();
    for (const sha of shas) {
      if (foreignShas.includes(sha)) continue;
      const message = await gitBare(["show", "-s", "--format=%B", sha]);
      const id = /^Ferry-Promotion: (\S+)$/m.exec(message)?.[1];
      const i = byPromotion.get(id ?? "");
      expect(i, message).toBeDefined();
      seen.add(i!);
      const files = (await gitBare(["show", "--format=", "--name-only", sha])).trim().split("\n");
      const diff = (await gitBare(["show", "--format=", "--unified=0", sha]))
        .split("\n")
        .filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
      const digest = images[i! % 2]!.digest;
      if (i! < SHARED) {
        expect(files).toEqual(["shared/kustomization.yaml"]);
        expect(diff).toEqual([
          `-    newName: old.example/${name(i!)}`,
          `-    newTag: v${i}`,
          `+    newName: ${source.host}/prod/web`,
          `+    digest: ${digest}`,
        ]);
      } else {
        expect(files).toEqual([`apps/${name(i!)}.yaml`]);
        expect(diff).toEqual([
          `-      image: old.example/${name(i!)}:v1 # pinned`,
          `+      image: ${source.host}/prod/web@${digest} # pinned`,
        ]);
      }
    }
    expect(seen.size).toBe(APPS);

    // No lost update: the head pins every app's digest.
    const shared = await gitServer.readFile("deploy", "main", "shared/kustomization.yaml");
    for (let i = 0; i < SHARED; i++)
      expect(shared).toContain(
        `  - name: ${name(i)}\n    newName: ${source.host}/prod/web\n    digest: ${images[i % 2]!.digest}\n`,
      );
    expect(shared).not.toContain("old.example");
    for (let i = SHARED; i < APPS; i++)
      expect(await gitServer.readFile("deploy", "main", `apps/${name(i)}.yaml`)).toContain(
        images[i % 2]!.digest,
      );
    expect(await gitServer.readFile("deploy", "main", "notes.txt")).toBe(
      `0\n${foreignShas.map((_, n) => `${n + 1}\n`).join("")}`,
    );
  }, 600_000);
});
