import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfigFile, parseConfigText } from "../../src/config/load.ts";

const REPO = path.resolve(import.meta.dirname, "../..");

const BASE = `store: { sqlite: ./ferry.db }
keys: { signing: ./signing.pem }
environments: [{ name: staging }, { name: production, after: staging }]
`;

const DEV_ISSUER = `issuers:
  - { name: dev-ci, devKey: ./dev.pem, url: "https://dev-ci.ferry.invalid", audience: ferry-dev }
`;

function problemsOf(text: string): { path: string; message: string }[] {
  try {
    parseConfigText(text, "/srv/ferry/ferry.yaml", {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("dev-only config: dev issuers, oci-layout images, file:// GitOps repositories", () => {
  it("refuses a dev issuer outside dev mode, at its path", () => {
    expect(problemsOf(`${BASE}${DEV_ISSUER}`)).toEqual([
      { path: "issuers[0].devKey", message: expect.stringContaining("only with `dev: true`") },
    ]);
    expect(problemsOf(`dev: true\n${BASE}${DEV_ISSUER}`)).toEqual([]);
  });

  it("refuses a jwksUri beside a devKey (the key is the file)", () => {
    const text = `dev: true\n${BASE}${DEV_ISSUER.replace("audience: ferry-dev", 'audience: ferry-dev, jwksUri: "https://dev-ci.ferry.invalid/jwks"')}`;
    expect(problemsOf(text)).toEqual([
      { path: "issuers[0].jwksUri", message: expect.stringContaining("devKey") },
    ]);
  });

  it("resolves oci-layout images and devKey against the config file's folder; layouts are allowed outside dev mode", () => {
    const text = `${BASE}apps:\n  - name: demo\n    images: { staging: "oci-layout:../data/layouts/staging", production: "127.0.0.1:5000/prod/demo" }\n`;
    const { config } = parseConfigText(text, "/srv/ferry/conf/ferry.yaml", {});
    expect(config.apps[0]!.images).toEqual({
      staging: "oci-layout:/srv/ferry/data/layouts/staging",
      production: "127.0.0.1:5000/prod/demo",
    });
    const dev = parseConfigText(`dev: true\n${BASE}${DEV_ISSUER}`, "/srv/ferry/conf/ferry.yaml", {});
    expect(dev.config.issuers[0]!.devKey).toBe("/srv/ferry/conf/dev.pem");
  });

  it("reports a bad oci-layout image with its path", () => {
    const text = `${BASE}apps:\n  - name: demo\n    images: { staging: "oci-layout:", production: "oci-layout:./p@sha256:${"a".repeat(64)}" }\n`;
    expect(problemsOf(text)).toEqual([
      { path: "apps[0].images.staging", message: expect.stringContaining("needs a directory") },
      { path: "apps[0].images.production", message: expect.stringContaining("no @digest") },
    ]);
  });

  it("allows a file:// GitOps repository only in dev mode, and resolves a relative one", () => {
    const app = `apps:
  - name: demo
    images: { staging: "oci-layout:./s", production: "oci-layout:./p" }
    gitops:
      production: { repo: "file://../data/demo.git", kind: helm-values, path: values.yaml, digest: image.digest }
`;
    expect(problemsOf(`${BASE}${app}`)).toEqual([
      { path: "apps[0].gitops.production.repo", message: expect.stringContaining("only with `dev: true`") },
    ]);
    const { config } = parseConfigText(`dev: true\n${BASE}${app}`, "/srv/ferry/conf/ferry.yaml", {});
    expect(config.apps[0]!.gitops!.production!.repo).toBe("file:///srv/ferry/data/demo.git");
  });

  it("the embedded default is a dev config with the demo app in layouts", () => {
    const { config } = loadConfigFile(path.join(REPO, "examples/ferry.dev.yaml"), {});
    expect(config.dev).toBe(true);
    expect(config.apps.map((a) => a.name)).toEqual(["demo"]);
    expect(config.apps[0]!.images.production).toBe(
      `oci-layout:${path.join(REPO, "data/layouts/production")}`,
    );
    expect(config.issuers.every((i) => i.devKey === path.join(REPO, "data/dev-issuer.pem"))).toBe(true);
    expect(config.server.listen).toBe("127.0.0.1:8080");
    expect(
      loadConfigFile(path.join(REPO, "examples/ferry.dev.yaml"), { FERRY_LISTEN: "127.0.0.1:9090" }).config
        .server.publicUrl,
    ).toBe("http://127.0.0.1:9090");
  });
});
