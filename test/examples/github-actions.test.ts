// examples/github-actions: the workflow passes the real actionlint (and a broken copy does not), it
// talks to Ferry the way the ferry.yaml snippet beside it expects, and the snippet is a valid part
// of a config whose policies admit that workflow's tokens and refuse look-alikes.
import { describe, expect, it } from "vitest";
import { githubClaims } from "../../src/identity/claims.ts";
import {
  actionlint,
  breakOnce,
  mergeSnippet,
  pipeline,
  readRepoFile,
  readRepoYaml,
  verdictFor,
} from "./support.ts";

const WORKFLOW = "examples/github-actions/ferry.yml";
const SNIPPET = "examples/github-actions/ferry.yaml";
// Where the README tells people to put the workflow: its path is in the job_workflow_ref claim.
const INSTALLED_AS = ".github/workflows/ferry.yml";

const workflowText = readRepoFile(WORKFLOW);

interface Step {
  uses?: string;
  run?: string;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  permissions?: Record<string, string>;
  steps: Step[];
}
const workflow = readRepoYaml(WORKFLOW) as {
  permissions: unknown;
  env: Record<string, string>;
  jobs: Record<string, Job>;
};
const snippet = readRepoYaml(SNIPPET) as {
  issuers: { name: string; url: string; audience: string }[];
};
const githubIssuer = snippet.issuers.find((i) => i.name === "github");

const runs = (job: Job): string[] => job.steps.flatMap((s) => (s.run === undefined ? [] : [s.run]));
const needsOf = (job: Job): string[] =>
  job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];

describe("the workflow, linted by actionlint", () => {
  it("has no findings", async () => {
    expect(await actionlint(workflowText, INSTALLED_AS)).toEqual([]);
  });

  it("reports each deliberate break of a copy: the token permission, a job's needs, a step's output", async () => {
    const permission = await actionlint(
      breakOnce(workflowText, "id-token: write # the OIDC token that asks", "id-token: writ # the"),
      INSTALLED_AS,
    );
    expect(permission).toEqual([
      expect.objectContaining({ kind: "permissions", message: expect.stringMatching(/"writ" is invalid/) }),
    ]);

    const needs = await actionlint(breakOnce(workflowText, "needs: build\n", "needs: buidl\n"), INSTALLED_AS);
    expect(needs).toContainEqual(
      expect.objectContaining({
        kind: "job-needs",
        message: expect.stringMatching(/"buidl" which does not exist/),
      }),
    );

    const output = await actionlint(
      breakOnce(
        workflowText,
        "digest: ${{ steps.push.outputs.digest }}",
        "digest: ${{ steps.pushed.outputs.digest }}",
      ),
      INSTALLED_AS,
    );
    expect(output).toContainEqual(
      expect.objectContaining({ kind: "expression", message: expect.stringMatching(/property "pushed"/) }),
    );
  });
});

describe("the workflow's use of Ferry", () => {
  it("asks for OIDC tokens only in the jobs that call Ferry, for the audience the snippet's issuer expects", () => {
    expect(workflow.permissions).toEqual({});
    for (const name of ["build", "staging", "production"])
      expect(workflow.jobs[name]?.permissions?.["id-token"], name).toBe("write");
    expect(githubIssuer?.url).toBe("https://token.actions.githubusercontent.com");
    expect(workflow.env.FERRY_AUDIENCE).toBe(githubIssuer?.audience);
    expect(workflow.env.FERRY_SERVER).toMatch(/^https:\/\//);
  });

  it("builds, signs, promotes to staging, then production with --wait, each by digest", () => {
    const build = workflow.jobs.build as Job;
    const staging = workflow.jobs.staging as Job;
    const production = workflow.jobs.production as Job;
    expect(runs(build).join("\n")).toMatch(/docker push "\$IMAGE:\$GITHUB_SHA"/);
    expect(runs(build).join("\n")).toMatch(/"\$FERRY_SERVER\/v1\/signatures"/);
    expect(runs(build).join("\n")).toMatch(/\{image: \$image\}/);
    expect(needsOf(staging)).toEqual(["build"]);
    expect(needsOf(production)).toEqual(["build", "staging"]);
    expect(runs(staging).join("\n")).toMatch(/promote --app web --digest "\$DIGEST" --to staging --wait=/);
    expect(runs(production).join("\n")).toMatch(
      /promote --app web --digest "\$DIGEST" --to production --wait=5h/,
    );
    for (const job of [staging, production])
      expect(job.steps.map((s) => s.env?.DIGEST)).toContain("${{ needs.build.outputs.digest }}");
  });

  it("pins every action by commit SHA and Ferry's image by digest", () => {
    const uses = Object.values(workflow.jobs).flatMap((j) =>
      j.steps.flatMap((s) => (s.uses ? [s.uses] : [])),
    );
    expect(uses.length).toBeGreaterThan(0);
    for (const ref of uses) expect(ref).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
    // The release each SHA is, for the reader, as a comment on the same line.
    for (const ref of uses) expect(workflowText).toMatch(new RegExp(`${ref} # v\\d+\\.\\d+\\.\\d+\\n`));
    expect(workflow.env.FERRY_IMAGE).toMatch(/@sha256:[0-9a-f]{64}$/);
  });

  it("never puts a token on a command line or into the log", () => {
    const scripts = Object.values(workflow.jobs).flatMap(runs).join("\n");
    expect(scripts).not.toMatch(/set -x|echo[^\n]*\$\{?(token|ACTIONS_ID_TOKEN_REQUEST_TOKEN)/);
    // Tokens reach curl only as header files, and docker by variable name.
    expect(scripts).not.toMatch(/-H ["']Authorization/i);
    expect(scripts.match(/\$\{?token\b/g)).toEqual(["$token"]);
    expect(scripts).toMatch(/printf 'Authorization: Bearer %s\\n' "\$token" > /);
    // The runner's own token: into a header file, or handed to docker by name.
    const elsewhere = scripts
      .replaceAll(`printf 'Authorization: bearer %s\\n' "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" >`, "")
      .replaceAll("-e ACTIONS_ID_TOKEN_REQUEST_TOKEN", "");
    expect(elsewhere).not.toMatch(/ACTIONS_ID_TOKEN_REQUEST_TOKEN/);
  });
});

describe("the ferry.yaml snippet", () => {
  const env = { GHCR_USERNAME: "ferry", GHCR_TOKEN: "x", GITOPS_TOKEN: "y" };

  it("passes `ferry config check` merged into a minimal config, and `ferry policy lint` finds nothing risky", async () => {
    const merged = mergeSnippet(readRepoFile(SNIPPET));
    const check = await merged.check(env);
    expect(check.stderr).toBe("");
    expect(check.stdout).toMatch(/ferry\.yaml: ok/);
    expect(check.code).toBe(0);
    const lint = await merged.lint(env);
    expect(lint.stdout).toMatch(/: 0 warning\(s\)\n$/);
    expect(lint.code).toBe(0);
  });

  it("fails `ferry config check` when a break makes it invalid (so the check above can fail)", async () => {
    const broken = mergeSnippet(breakOnce(readRepoFile(SNIPPET), "count: 2 #", "count: two #"));
    const check = await broken.check(env);
    expect(check.code).toBe(2);
    expect(check.stderr).toMatch(/environments\[1\]\.approvals\.count/);
  });

  describe("admits this workflow's tokens, and refuses look-alikes", () => {
    const loaded = mergeSnippet(readRepoFile(SNIPPET)).load(env);
    const issuer = {
      name: "github",
      url: "https://token.actions.githubusercontent.com",
      platform: "github" as const,
    };
    // A push to main of acme/web, as GitHub writes the token of this workflow's jobs.
    const workflowRef = `acme/web/${INSTALLED_AS}@refs/heads/main`;
    const claims = {
      iss: issuer.url,
      aud: workflow.env.FERRY_AUDIENCE,
      sub: "repo:acme/web:ref:refs/heads/main",
      jti: "4b0c2e64-5d0f-4b0a-9a0e-7c3b1f0e6a11",
      repository: "acme/web",
      repository_id: "892375610",
      repository_owner: "acme",
      repository_owner_id: "141922213",
      repository_visibility: "private",
      ref: "refs/heads/main",
      ref_type: "branch",
      ref_protected: "true",
      sha: "6f1ed002ab5595859014ebf0951522d9e2ee3a9c",
      event_name: "push",
      run_id: "14210233710",
      run_number: "87",
      run_attempt: "1",
      actor: "octocat",
      actor_id: "583231",
      workflow: "ferry",
      workflow_ref: workflowRef,
      job_workflow_ref: workflowRef,
      runner_environment: "github-hosted",
    };
    const verdict = (changes: Readonly<Record<string, string>>) =>
      verdictFor(loaded, "web", pipeline(issuer, { ...claims, ...changes }));

    it("uses claims of GitHub's real shape", () => {
      expect(githubClaims.safeParse(claims).success).toBe(true);
    });

    it("the workflow on main: signs, promotes to staging and may ask for production", () => {
      const v = verdict({});
      expect(v.actsForApp).toBe(true);
      expect(v.promote("staging")).toMatchObject({ allowed: true, as: "pipeline" });
      expect(v.promote("production")).toMatchObject({ allowed: true, as: "pipeline", promoterRule: 0 });
    });

    it("another workflow file of the repository: staging only", () => {
      const other = "acme/web/.github/workflows/experiment.yml@refs/heads/main";
      const v = verdict({ workflow_ref: other, job_workflow_ref: other });
      expect(v.promote("staging")).toMatchObject({ allowed: true });
      expect(v.promote("production")).toMatchObject({ allowed: false, reason: "not_environment_promoter" });
    });

    it("another repository under the same name, a pull_request_target run, a self-hosted runner: nothing", () => {
      for (const changes of [
        { repository_id: "992375611" },
        { repository_owner_id: "7" },
        { event_name: "pull_request_target" },
        { runner_environment: "self-hosted" },
      ] as Record<string, string>[]) {
        const v = verdict(changes);
        expect(v.actsForApp, JSON.stringify(changes)).toBe(false);
        expect(v.promote("staging")).toMatchObject({ allowed: false, reason: "not_app_pipeline" });
      }
    });
  });
});
