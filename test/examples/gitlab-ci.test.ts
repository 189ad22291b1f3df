// examples/gitlab-ci: the pipeline is valid against GitLab's published CI schema (vendored in
// test/fixtures, and a broken copy is not), it talks to Ferry the way the ferry.yaml snippet beside
// it expects, and the snippet is a valid part of a config whose policies admit that pipeline's
// tokens and refuse look-alikes.
import { Ajv, type ErrorObject } from "ajv";
import addFormatsModule from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { gitlabClaims } from "../../src/identity/claims.ts";
import {
  breakOnce,
  mergeSnippet,
  pipeline,
  readRepoFile,
  readRepoYaml,
  sha256OfRepoFile,
  verdictFor,
} from "./support.ts";

const PIPELINE = "examples/gitlab-ci/.gitlab-ci.yml";
const SNIPPET = "examples/gitlab-ci/ferry.yaml";
const SCHEMA = "test/fixtures/gitlab-ci-schema.json";

const pipelineText = readRepoFile(PIPELINE);

interface Job {
  extends?: string;
  image?: string | { name: string };
  services?: { name: string }[];
  needs?: { job: string }[];
  id_tokens?: Record<string, { aud: string }>;
  timeout?: string;
  script?: string[];
}
const ci = readRepoYaml(PIPELINE) as Record<string, Job> & { variables: Record<string, string> };
const snippet = readRepoYaml(SNIPPET) as {
  issuers: { name: string; url: string; audience: string }[];
};
const gitlabIssuer = snippet.issuers.find((i) => i.name === "gitlab");

/** A job with its `extends` template applied (one level: all this example uses). */
function job(name: string): Job {
  const own = ci[name] as Job;
  return own.extends === undefined ? own : { ...(ci[own.extends] as Job), ...own };
}
const script = (name: string): string => (job(name).script ?? []).join("\n");

// GitLab's schema uses keywords of its editor (`markdownDescription`), hence strict: false.
// ajv-formats is CommonJS; its default export is the function under Node's ESM interop.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readRepoFile(SCHEMA)));
function schemaErrors(text: string): ErrorObject[] {
  return validate(parse(text)) ? [] : [...(validate.errors ?? [])];
}

describe("the pipeline, against GitLab's CI schema", () => {
  it("is the vendored file its header names (size and SHA-256)", () => {
    const header = readRepoFile("test/fixtures/gitlab-ci-schema.README.md");
    expect(header).toContain(`\`${sha256OfRepoFile(SCHEMA)}\``);
    expect(header).toMatch(/gitlab-ci-local` \*\*4\.75\.1\*\*/);
  });

  it("is valid", () => {
    expect(schemaErrors(pipelineText)).toEqual([]);
  });

  it("reports each deliberate break of a copy: an ID token without `aud`, an unknown job keyword", () => {
    const aud = schemaErrors(
      breakOnce(pipelineText, "FERRY_SIGN_TOKEN:\n      aud:", "FERRY_SIGN_TOKEN:\n      audience:"),
    );
    expect(aud).toContainEqual(
      expect.objectContaining({
        instancePath: "/build/id_tokens/FERRY_SIGN_TOKEN",
        params: { missingProperty: "aud" },
      }),
    );
    const keyword = schemaErrors(breakOnce(pipelineText, "  timeout: 5h 10m\n", "  timeuot: 5h 10m\n"));
    expect(keyword).toContainEqual(
      expect.objectContaining({ instancePath: "/production", params: { additionalProperty: "timeuot" } }),
    );
  });
});

describe("the pipeline's use of Ferry", () => {
  it("declares ID tokens for the audience the snippet's issuer expects, one per job that calls Ferry", () => {
    expect(gitlabIssuer?.url).toBe("https://gitlab.com");
    expect(job("build").id_tokens).toEqual({ FERRY_SIGN_TOKEN: { aud: gitlabIssuer?.audience } });
    for (const name of ["staging", "production"])
      expect(job(name).id_tokens, name).toEqual({ FERRY_ID_TOKEN: { aud: gitlabIssuer?.audience } });
  });

  it("builds, signs, promotes to staging, then production with --wait inside the job's timeout", () => {
    expect(script("build")).toMatch(/docker push "\$IMAGE:\$CI_COMMIT_SHA"/);
    expect(script("build")).toMatch(/"\$FERRY_SERVER\/v1\/signatures"/);
    expect(script("staging")).toMatch(/promote --app web --digest "\$DIGEST" --to staging --wait=/);
    expect(script("production")).toMatch(/promote --app web --digest "\$DIGEST" --to production --wait=5h$/);
    expect(job("production").timeout).toBe("5h 10m");
    expect(job("production").needs?.map((n) => n.job)).toEqual(["build", "staging"]);
    expect(job("staging").needs?.map((n) => n.job)).toEqual(["build"]);
  });

  it("pulls every image by digest", () => {
    const images = ["build", "staging", "production"].flatMap((name) => {
      const j = job(name);
      const image = typeof j.image === "string" ? j.image : j.image?.name;
      return [image, ...(j.services ?? []).map((s) => s.name)];
    });
    expect(images).toEqual(["$DOCKER_IMAGE", "$DIND_IMAGE", "$FERRY_IMAGE", "$FERRY_IMAGE"]);
    for (const name of ["DOCKER_IMAGE", "DIND_IMAGE", "FERRY_IMAGE"])
      expect(ci.variables[name], name).toMatch(/@sha256:[0-9a-f]{64}$/);
  });

  it("never puts a token on a command line or into the log", () => {
    const scripts = ["build", "staging", "production"].map(script).join("\n");
    expect(scripts).not.toMatch(
      /set -x|echo[^\n]*\$\{?(FERRY_SIGN_TOKEN|FERRY_ID_TOKEN|CI_REGISTRY_PASSWORD)/,
    );
    expect(scripts).not.toMatch(/-H ["']Authorization/i);
    // The signing token goes into a header file; `ferry` reads FERRY_ID_TOKEN from its environment.
    const elsewhere = scripts.replace(
      `printf 'Authorization: Bearer %s\\n' "$FERRY_SIGN_TOKEN" > "$auth"`,
      "",
    );
    expect(elsewhere).not.toMatch(/FERRY_SIGN_TOKEN|FERRY_ID_TOKEN/);
  });
});

describe("the ferry.yaml snippet", () => {
  const env = { GITLAB_REGISTRY_USER: "ferry", GITLAB_REGISTRY_TOKEN: "x", GITOPS_TOKEN: "y" };

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
    const broken = mergeSnippet(breakOnce(readRepoFile(SNIPPET), "kind: kustomize", "kind: kustomise"));
    const check = await broken.check(env);
    expect(check.code).toBe(2);
    expect(check.stderr).toMatch(/apps\[0\]\.gitops\.production/);
  });

  describe("admits this pipeline's tokens, and refuses look-alikes", () => {
    const loaded = mergeSnippet(readRepoFile(SNIPPET)).load(env);
    const issuer = { name: "gitlab", url: "https://gitlab.com", platform: "gitlab" as const };
    // A push to main of acme/web, as gitlab.com writes an `id_tokens:` token of this pipeline.
    const claims = {
      iss: issuer.url,
      aud: gitlabIssuer?.audience,
      sub: "project_path:acme/web:ref_type:branch:ref:main",
      jti: "c0b4b4b2-9b1e-4a8e-8a51-2f9f3c7d1e20",
      namespace_id: "13370042",
      namespace_path: "acme",
      project_id: "61524018",
      project_path: "acme/web",
      user_id: "2417",
      user_login: "alice",
      pipeline_id: "1650077777",
      pipeline_source: "push",
      job_id: "9120045213",
      ref: "main",
      ref_type: "branch",
      ref_path: "refs/heads/main",
      ref_protected: "true",
      sha: "6f1ed002ab5595859014ebf0951522d9e2ee3a9c",
      runner_id: 12270835,
      runner_environment: "gitlab-hosted",
      project_visibility: "private",
      ci_config_ref_uri: "gitlab.com/acme/web//.gitlab-ci.yml@refs/heads/main",
      ci_config_sha: "6f1ed002ab5595859014ebf0951522d9e2ee3a9c",
    };
    const verdict = (changes: Readonly<Record<string, string>>) =>
      verdictFor(loaded, "web", pipeline(issuer, { ...claims, ...changes }));

    it("uses claims of GitLab's real shape", () => {
      expect(gitlabClaims.safeParse(claims).success).toBe(true);
    });

    it("this pipeline on main: signs, promotes to staging and may ask for production", () => {
      const v = verdict({});
      expect(v.actsForApp).toBe(true);
      expect(v.promote("staging")).toMatchObject({ allowed: true, as: "pipeline" });
      expect(v.promote("production")).toMatchObject({ allowed: true, as: "pipeline", promoterRule: 0 });
    });

    it("a protected release branch, or a CI configuration from another ref: staging only", () => {
      for (const changes of [
        { ref: "release-1", ref_path: "refs/heads/release-1" },
        { ci_config_ref_uri: "gitlab.com/acme/web//.gitlab-ci.yml@refs/heads/release-1" },
      ] as Record<string, string>[]) {
        const v = verdict(changes);
        expect(v.promote("staging"), JSON.stringify(changes)).toMatchObject({ allowed: true });
        expect(v.promote("production")).toMatchObject({ allowed: false, reason: "not_environment_promoter" });
      }
    });

    it("another project under the same path, an unprotected branch, a merge request, a self-managed runner: nothing", () => {
      for (const changes of [
        { project_id: "61524019" },
        { namespace_id: "99" },
        { ref_protected: "false" },
        { pipeline_source: "merge_request_event" },
        { runner_environment: "self-hosted" },
      ] as Record<string, string>[]) {
        const v = verdict(changes);
        expect(v.actsForApp, JSON.stringify(changes)).toBe(false);
        expect(v.promote("staging")).toMatchObject({ allowed: false, reason: "not_app_pipeline" });
      }
    });
  });
});
