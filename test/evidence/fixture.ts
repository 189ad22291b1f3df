/**
 * A running Ferry whose production environment needs two release managers' approvals, on a real
 * registry, with a pipeline and an SSO issuer: what the evidence tests promote, approve and reject on.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { githubClaims, humanClaims } from "../identity/fixtures.ts";
import { type ApiAnswer, callApi, startTestFerry, type TestFerry } from "../support/ferry.ts";
import { loopbackIssuerConfig, type OidcIssuer, startOidcIssuer } from "../support/oidc-issuer.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";
import { pushSignedImage, type SignedImage } from "../support/signed-image.ts";

export const AUD = "https://ferry-evidence.test";

export const PEOPLE = {
  rm1: { sub: "rm-1", groups: ["release-managers"] },
  rm2: { sub: "rm-2", groups: ["release-managers"] },
  rm3: { sub: "rm-3", groups: ["release-managers"] },
  auditor: { sub: "auditor-1", groups: ["auditors"] },
} as const;
export type Who = keyof typeof PEOPLE | "main";

/** The running pieces. */
export interface EvidenceFixture {
  registry: TestRegistry;
  github: OidcIssuer;
  sso: OidcIssuer;
  ferry: TestFerry;
  work: string;
  prodRepo: string;
  /** A new signed image in the staging repository. */
  image(): Promise<SignedImage>;
  tokenOf(who: Who): Promise<string>;
  call(who: Who, method: string, url: string, body?: unknown): Promise<ApiAnswer>;
  /** Promotes to staging and asks for production: the production promotion's id (waiting on approvals). */
  toProduction(digest: string): Promise<string>;
  /** Waits until the promotion is in one of `states`. */
  until(id: string, states: string[]): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts the registry, the issuers and Ferry. */
export async function startEvidenceFixture(): Promise<EvidenceFixture> {
  const [registry, github, sso] = await Promise.all([startRegistry(), startOidcIssuer(), startOidcIssuer()]);
  const work = mkdtempSync(path.join(tmpdir(), "ferry-evidence-"));
  const first = await pushSignedImage(registry, "staging/web", work, { bundle: false });
  const prodRepo = `${registry.host}/prod/web`;
  const require = { signature: { authorities: ["ci"] } };
  const ferry = await startTestFerry({
    server: { listen: "127.0.0.1:0", publicUrl: AUD },
    issuers: [
      loopbackIssuerConfig("github", github, AUD, { platform: "github" }),
      loopbackIssuerConfig("sso", sso, AUD, { kind: "human", groupsClaim: "groups" }),
    ],
    registries: [{ url: registry.url }],
    trust: { authorities: [{ name: "ci", key: first.keys.publicKeyPath }] },
    environments: [
      { name: "staging", require },
      {
        name: "production",
        after: "staging",
        require,
        approvals: {
          count: 2,
          groups: ["release-managers"],
          separationOfDuties: { requireLinkedIdentity: false },
        },
      },
    ],
    apps: [
      {
        name: "web",
        images: { staging: `${registry.host}/staging/web`, production: prodRepo },
        pipelines: [{ issuer: "github", claims: { repository_id: "74" } }],
      },
    ],
    promotion: { pollInterval: "200ms" },
    audit: { readers: ["auditors"] },
  });
  let images = 0;
  const tokenOf = async (who: Who) => {
    if (who === "main") return github.sign(githubClaims({ iss: github.url, aud: AUD }));
    const p = PEOPLE[who];
    return sso.sign(
      humanClaims({ iss: sso.url, aud: AUD }, { sub: p.sub, groups: [...p.groups], name: `${p.sub} name` }),
    );
  };
  const call = async (who: Who, method: string, url: string, body?: unknown) =>
    callApi(ferry, await tokenOf(who), method, url, body);
  const until = async (id: string, states: string[]) => {
    for (let i = 0; i < 60; i++) {
      const { json } = await call("main", "GET", `/v1/promotions/${id}?wait=5s`);
      if (states.includes(String(json.state))) return json;
    }
    throw new Error(`promotion ${id} did not reach ${states.join("/")}`);
  };
  return {
    registry,
    github,
    sso,
    ferry,
    work,
    prodRepo,
    image: () =>
      images++ === 0
        ? Promise.resolve(first)
        : pushSignedImage(registry, "staging/web", work, { bundle: false, keys: first.keys }),
    tokenOf,
    call,
    until,
    async toProduction(digest) {
      const staged = await call("main", "POST", "/v1/promotions", { app: "web", digest, to: "staging" });
      expect(staged.status, JSON.stringify(staged.json)).toBe(201);
      expect((await until(String(staged.json.id), ["promoted", "failed"])).state).toBe("promoted");
      const prod = await call("main", "POST", "/v1/promotions", { app: "web", digest, to: "production" });
      expect(prod.status, JSON.stringify(prod.json)).toBe(201);
      const id = String(prod.json.id);
      await until(id, ["waiting"]);
      return id;
    },
    async stop() {
      await ferry?.close();
      await Promise.all([registry?.stop(), github?.stop(), sso?.stop()]);
    },
  };
}
