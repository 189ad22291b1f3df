import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { RegistryClient } from "../../src/registry/client.ts";
import { OciLayout } from "../../src/registry/layout.ts";
import { NO_STACK, runFerry } from "../support/cli.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

let work: string;
let reg: TestRegistry;
let digest: string;
let config: string;
let proxy: FaultProxy;
let proxied: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "ferry-cli-copy-"));
  reg = await startRegistry({ auth: "htpasswd" });
  const image = await buildImageLayout(join(work, "image"));
  digest = await pushImage(image.dir, reg, "cli/app:v1");
  config = join(work, "ferry.yaml");
  await writeFile(
    config,
    stringify({
      store: { sqlite: "./ferry.db" },
      keys: { signing: "./signing.pem" },
      registries: [{ url: reg.url, auth: { username: reg.username, password: "${REG_PASS}" } }],
    }),
  );
  // The same registry behind a proxy that records every request: to count what a copy writes.
  proxy = await startFaultProxy(reg.url);
  proxied = join(work, "proxied.yaml");
  await writeFile(
    proxied,
    stringify({
      store: { sqlite: "./ferry.db" },
      keys: { signing: "./signing.pem" },
      registries: [{ url: proxy.url, auth: { username: reg.username, password: "${REG_PASS}" } }],
    }),
  );
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("ferry copy", () => {
  it("copies by digest between repositories and into an OCI layout, exit 0", async () => {
    const env = { REG_PASS: reg.password! };
    const toRepo = await runFerry(
      ["copy", `${reg.host}/cli/app@${digest}`, `${reg.host}/cli/prod`, "--config", config],
      { env },
    );
    expect(toRepo.stderr).toMatch(/blob sha256:.{12}… .* mounted/);
    expect(toRepo.code, toRepo.stderr).toBe(0);
    expect(toRepo.stdout).toContain(`${reg.host}/cli/prod@${digest}`);
    const client = new RegistryClient({
      registries: [{ url: reg.url, auth: { username: reg.username!, password: reg.password! } }],
    });
    expect(await client.repository({ registry: reg.host, repository: "cli/prod" }).hasManifest(digest)).toBe(
      true,
    );

    const dir = join(work, "layout");
    const toLayout = await runFerry(
      ["copy", "-q", `${reg.host}/cli/app@${digest}`, `oci-layout:${dir}`, "-c", config],
      { env },
    );
    expect(toLayout.code, toLayout.stderr).toBe(0);
    expect(toLayout.stderr).toBe("");
    expect(await (await OciLayout.open(dir)).hasManifest(digest)).toBe(true);

    // Between two layouts no config is needed.
    const between = await runFerry([
      "copy",
      `oci-layout:${dir}@${digest}`,
      `oci-layout:${join(work, "layout2")}`,
    ]);
    expect(between.code, between.stderr).toBe(0);
  });

  it("refuses a tag with exit 2 and says how to find the digest", async () => {
    const run = await runFerry(
      ["copy", `${reg.host}/cli/app:v1`, `${reg.host}/cli/prod`, "--config", config],
      {
        env: { REG_PASS: reg.password! },
      },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/crane digest .*skopeo inspect/);
    expect(run.stderr).not.toMatch(NO_STACK);
  });

  it("refuses an unlisted registry with exit 2, without contacting it", async () => {
    const run = await runFerry(
      ["copy", `registry.example.com/app@${digest}`, `${reg.host}/cli/prod`, "--config", config],
      { env: { REG_PASS: reg.password! } },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/not listed in the config's `registries`/);
    expect(run.stderr).not.toMatch(NO_STACK);
  });

  it("reports a wrong password with exit 2 and never prints it", async () => {
    const run = await runFerry(
      ["copy", `${reg.host}/cli/app@${digest}`, `${reg.host}/cli/prod`, "--config", config],
      { env: { REG_PASS: "not-the-password-4711" } },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/HTTP 401/);
    expect(run.stderr + run.stdout).not.toContain("not-the-password-4711");
  });

  it("says `already present` on a repeated copy and writes nothing", async () => {
    const env = { REG_PASS: reg.password! };
    const args = ["copy", `${proxy.host}/cli/app@${digest}`, `${proxy.host}/cli/again`, "-c", proxied];
    const first = await runFerry(args, { env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${proxy.host}/cli/again@${digest} copied`);
    proxy.clearRequests();
    const again = await runFerry(args, { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      new RegExp(`^${proxy.host}/cli/again@${digest} already present: nothing written`),
    );
    expect(again.stdout).not.toMatch(/copied|pushed/);
    expect(again.stderr).toMatch(/manifest sha256:.{12}… present/);
    expect(proxy.requests.length).toBeGreaterThan(0);
    expect(proxy.requests.filter((r) => r.method === "PUT" || r.method === "POST")).toEqual([]);
  });

  it("--tag tags the destination with the same manifest, and a second run finds the tag there", async () => {
    const env = { REG_PASS: reg.password! };
    const args = [
      "copy",
      "-q",
      `${proxy.host}/cli/app@${digest}`,
      `${proxy.host}/cli/tagged`,
      "--tag",
      "v1.0",
    ];
    const run = await runFerry([...args, "-c", proxied], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("tag v1.0: pushed");
    const client = new RegistryClient({
      registries: [{ url: reg.url, auth: { username: reg.username!, password: reg.password! } }],
    });
    const repo = client.repository({ registry: reg.host, repository: "cli/tagged" });
    expect((await repo.findManifest("v1.0"))?.descriptor.digest).toBe(digest);
    proxy.clearRequests();
    const again = await runFerry([...args, "-c", proxied], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("already present: nothing written");
    expect(again.stdout).toContain("tag v1.0: already there");
    expect(proxy.requests.filter((r) => r.method === "PUT" || r.method === "POST")).toEqual([]);
  });

  it("--tag refuses a name that is not an OCI tag with exit 2, before any request", async () => {
    proxy.clearRequests();
    const run = await runFerry(
      [
        "copy",
        `${proxy.host}/cli/app@${digest}`,
        `${proxy.host}/cli/tagged`,
        "--tag",
        "release/1",
        "-c",
        proxied,
      ],
      { env: { REG_PASS: reg.password! } },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/"release\/1" is not a valid OCI tag/);
    expect(run.stderr).not.toMatch(NO_STACK);
    expect(proxy.requests).toEqual([]);
  });
});
