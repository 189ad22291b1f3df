import { describe, expect, it } from "vitest";
import { type Clock, FakeClock, systemClock } from "../../src/common/clock.ts";
import { FerryError } from "../../src/common/errors.ts";
import { RegistryAllowList } from "../../src/registry/allow-list.ts";
import { RegistryAuthenticator, repositoryScope } from "../../src/registry/auth.ts";
import type { FetchFn, HttpPolicy } from "../../src/registry/http.ts";

const REGISTRY = "https://registry.example.test";
const REALM = "https://auth.example.test/token";

/** A token server stand-in: records each token request, answers with a numbered token. */
function fakeTokenServer(expiresIn = 300) {
  const requests: { scopes: string[]; authorization: string | null }[] = [];
  const fetch: FetchFn = async (input, init) => {
    const url = new URL(String(input));
    if (`${url.origin}${url.pathname}` !== REALM) throw new Error(`unexpected request to ${url}`);
    requests.push({
      scopes: url.searchParams.getAll("scope"),
      authorization: new Headers(init.headers).get("authorization"),
    });
    return Response.json({ token: `t${requests.length}`, expires_in: expiresIn });
  };
  return { requests, fetch };
}

function authenticator(fetch: FetchFn, opts: { realms?: string[]; clock?: Clock; auth?: boolean } = {}) {
  const endpoint = new RegistryAllowList([
    {
      url: REGISTRY,
      ...(opts.auth === false ? {} : { auth: { username: "robot", password: "s3cret" } }),
      tokenRealms: opts.realms ?? [REALM],
    },
  ]).endpoint("registry.example.test");
  const policy: HttpPolicy = {
    fetch,
    timeoutMs: 1_000,
    retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
    clock: opts.clock ?? systemClock,
  };
  return new RegistryAuthenticator(endpoint, policy);
}

const bearer = (scope: string) =>
  new Headers({
    "www-authenticate": `Bearer realm="${REALM}",service="registry.example.test",scope="${scope}"`,
  });

const pull = [repositoryScope("team/app", ["pull"])];
const push = [repositoryScope("team/app", ["pull", "push"])];
const mount = [...push, repositoryScope("team/src", ["pull"])];

describe("RegistryAuthenticator", () => {
  it("is anonymous until challenged, then asks the realm for the operation's scopes with Basic credentials", async () => {
    const server = fakeTokenServer();
    const auth = authenticator(server.fetch);
    expect(await auth.authorization(pull)).toBeUndefined();
    expect(await auth.challenged(bearer("repository:team/app:pull"), pull, undefined)).toBe(true);
    expect(await auth.authorization(pull)).toBe("Bearer t1");
    expect(server.requests).toEqual([
      { scopes: ["repository:team/app:pull"], authorization: `Basic ${btoa("robot:s3cret")}` },
    ]);
  });

  it("caches tokens per scope set, lets a superset serve a subset, and renews before expiry", async () => {
    const clock = new FakeClock(1_000_000);
    const server = fakeTokenServer(60);
    const auth = authenticator(server.fetch, { clock });
    await auth.challenged(bearer("repository:team/app:pull"), pull, undefined);
    expect(await auth.authorization(mount)).toBe("Bearer t2");
    expect(server.requests[1]?.scopes).toEqual(mount);
    expect(await auth.authorization(push)).toBe("Bearer t2"); // covered by the mount token
    expect(await auth.authorization(pull)).toBe("Bearer t1");
    expect(server.requests).toHaveLength(2);
    await clock.advance(53_999); // 60 s tokens are renewed 6 s early
    expect(await auth.authorization(pull)).toBe("Bearer t1");
    await clock.advance(1_001);
    expect(await auth.authorization(pull)).toBe("Bearer t3");
    expect(server.requests).toHaveLength(3);
  });

  it("asks once for concurrent requests with the same scopes", async () => {
    const server = fakeTokenServer();
    const auth = authenticator(server.fetch);
    await auth.challenged(bearer("repository:team/app:pull"), pull, undefined);
    const headers = await Promise.all([1, 2, 3, 4].map(() => auth.authorization(push)));
    expect(new Set(headers)).toEqual(new Set(["Bearer t2"]));
    expect(server.requests).toHaveLength(2);
  });

  it("replaces a refused token once", async () => {
    const server = fakeTokenServer();
    const auth = authenticator(server.fetch);
    await auth.challenged(bearer("repository:team/app:pull"), pull, undefined);
    expect(await auth.challenged(bearer("repository:team/app:pull"), pull, "Bearer t1")).toBe(true);
    expect(await auth.authorization(pull)).toBe("Bearer t2");
  });

  it("refuses a realm the config does not list, sending it nothing", async () => {
    const server = fakeTokenServer();
    const auth = authenticator(server.fetch, { realms: [] });
    await expect(auth.challenged(bearer("repository:team/app:pull"), pull, undefined)).rejects.toSatisfy(
      (err) => err instanceof FerryError && err.code === "forbidden",
    );
    expect(server.requests).toEqual([]);
  });

  it("answers a Basic challenge with the credentials once, and never without any", async () => {
    const fail: FetchFn = () => Promise.reject(new Error("no request expected"));
    const basic = new Headers({ "www-authenticate": 'Basic realm="registry"' });
    const withCreds = authenticator(fail);
    expect(await withCreds.challenged(basic, pull, undefined)).toBe(true);
    const header = await withCreds.authorization(pull);
    expect(header).toBe(`Basic ${btoa("robot:s3cret")}`);
    expect(await withCreds.challenged(basic, pull, header)).toBe(false);
    expect(await authenticator(fail, { auth: false }).challenged(basic, pull, undefined)).toBe(false);
  });
});
