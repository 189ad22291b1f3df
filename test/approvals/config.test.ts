import { describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";

const MINIMAL = "store: { sqlite: ./data/ferry.db }\nkeys: { signing: ./keys/signing.pem }\n";

function load(extra: string) {
  return parseConfigText(`${MINIMAL}${extra}`, "/etc/ferry/ferry.yaml", {});
}

function problemsOf(extra: string): { path: string; message: string }[] {
  try {
    load(extra);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected the config to be refused");
}

describe("approvals config", () => {
  it("fills the defaults: expiresAfter 24h, separation of duties with linked identities", () => {
    const { config } = load(
      "environments:\n  - name: production\n    approvals: { count: 2, groups: [release], requireEach: [security] }\n",
    );
    expect(config.environments[0]!.approvals).toEqual({
      count: 2,
      groups: ["release"],
      requireEach: ["security"],
      expiresAfter: 86_400_000,
      separationOfDuties: { requireLinkedIdentity: true },
    });
  });

  it("takes links on a human issuer", () => {
    const { config } = load(
      "issuers:\n  - { name: okta, url: https://acme.okta.com, audience: ferry, kind: human, groupsClaim: groups, links: { github: github_id, gitlab: gitlab_username } }\n",
    );
    expect(config.issuers[0]!.links).toEqual({ github: "github_id", gitlab: "gitlab_username" });
  });

  it("refuses links on a pipeline issuer, with the path", () => {
    const problems = problemsOf(
      "issuers:\n  - { name: gh, url: https://token.actions.githubusercontent.com, audience: ferry, links: { github: actor } }\n",
    );
    expect(problems).toContainEqual(expect.objectContaining({ path: "issuers[0].links" }));
    expect(problems.find((p) => p.path === "issuers[0].links")?.message).toMatch(/human issuer/);
  });

  it("refuses a link for an unknown platform", () => {
    const problems = problemsOf(
      "issuers:\n  - { name: okta, url: https://acme.okta.com, audience: ferry, kind: human, links: { bitbucket: bb } }\n",
    );
    expect(problems.map((p) => p.path).join(" ")).toMatch(/issuers\[0\]\.links/);
  });
});
