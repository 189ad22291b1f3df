import { describe, expect, it } from "vitest";
import { gitEnv } from "../../src/gitops/git/env.ts";
import { parseRemote } from "../../src/gitops/git/remote.ts";

/** The embedded default's GitOps repository is a local bare one: git's file transport, in dev mode only. */
describe("file:// remotes (dev mode only)", () => {
  it("are refused unless the workspace allows them", () => {
    expect(() => parseRemote("file:///srv/demo.git")).toThrow(/scheme file:/);
    expect(parseRemote("file:///srv/demo.git", undefined, { allowFile: true })).toMatchObject({
      transport: "file",
      display: "file:///srv/demo.git",
    });
  });

  it("carry no host, query or credentials even when allowed", () => {
    const allow = { allowFile: true };
    expect(() => parseRemote("file://host/srv/demo.git", undefined, allow)).toThrow(/no host/);
    expect(() => parseRemote("file:///srv/demo.git?x=1", undefined, allow)).toThrow(/no host, query/);
    expect(() => parseRemote("file:///srv/demo.git", { kind: "token", token: "t" }, allow)).toThrow(/auth/);
  });

  it("let git use the file transport for that remote only", () => {
    const env = (url: string, allowFile: boolean) =>
      gitEnv({
        remote: parseRemote(url, undefined, { allowFile }),
        auth: undefined,
        home: "/h",
        askpassFile: "/a",
        timeoutMs: 1000,
      }).GIT_ALLOW_PROTOCOL;
    expect(env("file:///srv/demo.git", true)).toBe("file");
    expect(env("https://git.example.com/a.git", true)).toBe("http:https:ssh");
  });
});
