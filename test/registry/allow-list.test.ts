import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";
import { isAllowedRealm, RegistryAllowList, redirectTarget } from "../../src/registry/allow-list.ts";

function problems(registries: unknown[]): string[] {
  const text = stringify({ store: { sqlite: "./f.db" }, keys: { signing: "./k.pem" }, registries });
  try {
    parseConfigText(text, "/tmp/ferry.yaml", {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

describe("registries in the config", () => {
  it("accepts loopback http, https, aliases, realms and storage origins", () => {
    expect(
      problems([
        { url: "http://127.0.0.1:5000" },
        {
          url: "https://registry-1.docker.io",
          aliases: ["docker.io"],
          tokenRealms: ["https://auth.docker.io/token"],
          blobRedirects: ["https://production.cloudflare.docker.com"],
        },
      ]),
    ).toEqual([]);
  });

  it("refuses plain http off loopback unless insecure, a path, and a host named twice", () => {
    expect(problems([{ url: "http://registry.internal:5000" }])).toEqual([
      "registries[0].url: plain http is only allowed for loopback registries; use https, or set `insecure: true`",
    ]);
    expect(problems([{ url: "http://registry.internal:5000", insecure: true }])).toEqual([]);
    expect(problems([{ url: "https://r.example.com/v2" }])).toEqual([
      "registries[0].url: expected a base URL with no path",
    ]);
    expect(
      problems([
        { url: "https://r.example.com" },
        { url: "https://x.example.com", aliases: ["r.example.com"] },
      ]),
    ).toEqual([
      'registries[1].url: registry host "r.example.com" is also registries[0]; each host names one registry',
    ]);
  });
});

describe("RegistryAllowList", () => {
  const list = new RegistryAllowList([
    {
      url: "https://registry-1.docker.io",
      aliases: ["docker.io"],
      tokenRealms: ["https://auth.docker.io/token"],
      blobRedirects: ["https://production.cloudflare.docker.com"],
    },
  ]);
  const hub = list.endpoint("docker.io");

  it("resolves aliases and refuses anything else", () => {
    expect(list.endpoint("registry-1.docker.io")).toBe(hub);
    expect(() => list.endpoint("evil.example.com")).toThrow(expect.objectContaining({ code: "forbidden" }));
  });

  it("allows realms on the registry's origin or listed exactly", () => {
    expect(isAllowedRealm(hub, new URL("https://registry-1.docker.io/token?x=1"))).toBe(true);
    expect(isAllowedRealm(hub, new URL("https://auth.docker.io/token?service=x"))).toBe(true);
    expect(isAllowedRealm(hub, new URL("https://auth.docker.io/other"))).toBe(false);
    expect(isAllowedRealm(hub, new URL("http://auth.docker.io/token"))).toBe(false);
  });

  it("tells a redirect back to the registry from one to storage, and refuses the rest", () => {
    expect(redirectTarget(hub, new URL("https://registry-1.docker.io/v2/x"))).toBe("registry");
    expect(redirectTarget(hub, new URL("https://production.cloudflare.docker.com/blob?sig=1"))).toBe(
      "storage",
    );
    expect(redirectTarget(hub, new URL("https://evil.example.com/"))).toBeUndefined();
  });
});
