import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { RegistryClient } from "../../src/registry/client.ts";
import { OciLayout } from "../../src/registry/layout.ts";
import { NO_STACK, runFerry } from "../support/cli.ts";
import { buildImageLayout, pushImage } from "../support/images.ts";
import { startRegistry, type TestRegistry } from "../support/registry.ts";

let work: string;
let reg: TestRegistry;
let digest: string;
let config: string;

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
});
afterAll(async () => {
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
});
