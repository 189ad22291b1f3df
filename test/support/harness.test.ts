// The test harness's own tests: each real component starts, serves, and refuses what it should,
// so a failure in a Ferry test points at Ferry rather than at the harness.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attest, generateKeyPair, sign, verify, verifyAttestation } from "./cosign.ts";
import { git, startGitServer, type TestGitServer } from "./git-server.ts";
import { buildImageLayout, pushImage, sha256Digest } from "./images.ts";
import { startPostgres, type TestPostgres } from "./postgres.ts";
import { type RegistryAuth, registryFetch, startRegistry, type TestRegistry } from "./registry.ts";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-harness-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("registry", () => {
  const modes: RegistryAuth[] = ["none", "htpasswd", "token"];
  const registries = new Map<RegistryAuth, TestRegistry>();

  beforeAll(async () => {
    const started = await Promise.all(modes.map((auth) => startRegistry({ auth })));
    for (const reg of started) registries.set(reg.auth, reg);
  });
  afterAll(async () => {
    await Promise.all([...registries.values()].map((r) => r.stop()));
  });

  it.each(modes)("pushes an image with exact digests (auth: %s)", async (auth) => {
    const reg = registries.get(auth)!;
    const image = await buildImageLayout(join(work, `image-${auth}`), { layers: 2, layerSize: 4096 });
    const digest = await pushImage(image.dir, reg, "harness/app:v1");
    expect(digest).toBe(image.digest);

    const res = await registryFetch(reg, `/v2/harness/app/manifests/${digest}`);
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(sha256Digest(bytes)).toBe(digest);
    expect(res.headers.get("docker-content-digest")).toBe(digest);

    const anonymous = await fetch(`${reg.url}/v2/harness/app/manifests/${digest}`);
    await anonymous.body?.cancel();
    if (auth === "none") {
      // Without an OCI Accept header distribution 2.8 hides OCI manifests: 404, not 401.
      expect(anonymous.status).not.toBe(401);
    } else {
      expect(anonymous.status).toBe(401);
      const challenge = anonymous.headers.get("www-authenticate") ?? "";
      expect(challenge).toMatch(
        auth === "htpasswd" ? /^Basic realm=/ : /^Bearer realm="http:\/\/127\.0\.0\.1:/,
      );
    }
  });

  it("refuses wrong credentials (htpasswd)", async () => {
    const reg = registries.get("htpasswd")!;
    const res = await registryFetch({ ...reg, password: "wrong" }, "/v2/");
    expect(res.status).toBe(401);
  });

  it("token server issued a push+pull token for the pushed repository", async () => {
    const reg = registries.get("token")!;
    const ts = reg.tokenServer!;
    const push = ts.requests.find(
      (r) =>
        r.status === 200 && r.scopes.some((s) => /^repository:harness\/app:(pull,push|push,pull)$/.test(s)),
    );
    expect(push).toBeDefined();
    expect(push!.authPresented).toBe(true);
    expect(push!.username).toBe(reg.username);
    expect(push!.service).toBe(ts.service);
    expect(push!.granted).toEqual([
      { type: "repository", name: "harness/app", actions: expect.arrayContaining(["pull", "push"]) },
    ]);

    const bad = await fetch(`${ts.realm}?service=${ts.service}&scope=repository:harness/app:pull`, {
      headers: { authorization: `Basic ${Buffer.from(`${reg.username}:wrong`).toString("base64")}` },
    });
    await bad.body?.cancel();
    expect(bad.status).toBe(401);
    expect(ts.requests.at(-1)).toMatchObject({ status: 401, authPresented: true, granted: [] });
  });

  it("pushes a multi-platform image index", async () => {
    const reg = registries.get("none")!;
    const image = await buildImageLayout(join(work, "image-index"), {
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64", variant: "v8" },
      ],
    });
    const digest = await pushImage(image.dir, reg, "harness/multi:v1");
    expect(digest).toBe(image.indexDigest);
    for (const m of image.manifests) {
      const res = await registryFetch(reg, `/v2/harness/multi/manifests/${m.digest}`);
      expect(res.status).toBe(200);
      expect(sha256Digest(new Uint8Array(await res.arrayBuffer()))).toBe(m.digest);
    }
  });

  it("cosign signs with a key; verification passes with that key and fails with another", async () => {
    const reg = registries.get("htpasswd")!;
    const registryAuth = { username: reg.username!, password: reg.password! };
    const image = await buildImageLayout(join(work, "image-signed"));
    const digest = await pushImage(image.dir, reg, "harness/signed:v1");
    const ref = `${reg.host}/harness/signed@${digest}`;
    const [keys, otherKeys] = await Promise.all([
      generateKeyPair(join(work, "keys-a")),
      generateKeyPair(join(work, "keys-b")),
    ]);

    const signed = await sign(ref, keys.privateKeyPath, { registryAuth });
    expect(signed.code, signed.stderr).toBe(0);
    // The signature landed in the registry as the legacy tag.
    const tags = await registryFetch(reg, "/v2/harness/signed/tags/list");
    expect(((await tags.json()) as { tags: string[] }).tags).toContain(`${digest.replace(":", "-")}.sig`);

    const good = await verify(ref, keys.publicKeyPath, { registryAuth });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain(digest);

    const wrongKey = await verify(ref, otherKeys.publicKeyPath, { registryAuth });
    expect(wrongKey.code).not.toBe(0);
    expect(wrongKey.stderr).toMatch(/no matching signatures/);

    // Without credentials cosign cannot even read the image.
    const noAuth = await verify(ref, keys.publicKeyPath);
    expect(noAuth.code).not.toBe(0);
  });

  it("cosign attests in the bundle format and verifies it offline", async () => {
    const reg = registries.get("none")!;
    const image = await buildImageLayout(join(work, "image-attested"));
    const digest = await pushImage(image.dir, reg, "harness/attested:v1");
    const ref = `${reg.host}/harness/attested@${digest}`;
    const keys = await generateKeyPair(join(work, "keys-attest"));
    const predicate = join(work, "predicate.json");
    await writeFile(predicate, JSON.stringify({ builder: "ferry-harness" }));
    const type = "https://ferry.test/harness/v1";

    const made = await attest(ref, keys.privateKeyPath, predicate, type, { newBundleFormat: true });
    expect(made.code, made.stderr).toBe(0);
    const checked = await verifyAttestation(ref, keys.publicKeyPath, type, { newBundleFormat: true });
    expect(checked.code, checked.stderr).toBe(0);
    const other = await verifyAttestation(ref, keys.publicKeyPath, "https://ferry.test/other/v1", {
      newBundleFormat: true,
    });
    expect(other.code).not.toBe(0);
  });
});

describe("postgres", () => {
  let pgServer: TestPostgres;
  beforeAll(async () => {
    pgServer = await startPostgres();
  });
  afterAll(async () => {
    await pgServer?.stop();
  });

  it("round-trips rows through a fresh database", async () => {
    const url = await pgServer.createDatabase("harness_roundtrip");
    expect(url).toBe(`postgres://postgres@127.0.0.1:${pgServer.port}/harness_roundtrip`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query("CREATE TABLE promotions (id serial PRIMARY KEY, digest text NOT NULL, note text)");
      await client.query("INSERT INTO promotions (digest, note) VALUES ($1, $2), ($3, $4)", [
        "sha256:aa",
        "first",
        "sha256:bb",
        "zweite – ünïcode",
      ]);
      const { rows } = await client.query("SELECT digest, note FROM promotions ORDER BY id");
      expect(rows).toEqual([
        { digest: "sha256:aa", note: "first" },
        { digest: "sha256:bb", note: "zweite – ünïcode" },
      ]);
      const db = await client.query("SELECT current_database() AS name");
      expect(db.rows[0].name).toBe("harness_roundtrip");
    } finally {
      await client.end();
    }
  });
});

describe("git server", () => {
  let server: TestGitServer;
  let home: string;
  beforeAll(async () => {
    server = await startGitServer({ username: "deployer", password: "s3cret-pass" });
    home = join(work, "git-home");
    await mkdir(home);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("accepts a push over http and refuses one with wrong credentials", async () => {
    await server.createRepo("team/deploy", { "README.md": "deploy\n", "env/prod/values.yaml": "tag: v1\n" });
    expect(await server.readFile("team/deploy", "main", "env/prod/values.yaml")).toBe("tag: v1\n");

    const clone = await git(["clone", "--quiet", server.url("team/deploy"), "deploy"], { cwd: home, home });
    expect(clone.code, clone.stderr).toBe(0);
    const checkout = join(home, "deploy");
    await writeFile(join(checkout, "env/prod/values.yaml"), "tag: v2\n");
    const commit = await git(["commit", "--quiet", "-am", "Promote v2"], { cwd: checkout, home });
    expect(commit.code, commit.stderr).toBe(0);
    const push = await git(["push", "--quiet", "origin", "main"], { cwd: checkout, home });
    expect(push.code, push.stderr).toBe(0);

    expect(await server.readFile("team/deploy", "main", "env/prod/values.yaml")).toBe("tag: v2\n");
    const log = await server.log("team/deploy", "main");
    expect(log.map((c) => c.subject)).toEqual(["Promote v2", "Initial commit"]);

    await writeFile(join(checkout, "README.md"), "not allowed\n");
    await git(["commit", "--quiet", "-am", "Sneaky"], { cwd: checkout, home });
    const badUrl = server.url("team/deploy").replace("s3cret-pass", "wrong-pass");
    const refused = await git(["push", "--quiet", badUrl, "main"], { cwd: checkout, home });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Authentication failed/);
    expect((await server.log("team/deploy", "main"))[0]?.subject).toBe("Promote v2");
  });
});
