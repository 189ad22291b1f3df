import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { writeDemoImage } from "../../src/dev/image.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import {
  absoluteLayoutReference,
  formatReference,
  parseDigestReference,
  parseReference,
  parseRepositoryReference,
} from "../../src/registry/reference.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe("oci-layout: references where a repository could stand", () => {
  it("parses an absolute layout directory, normalised, so `${registry}/${repository}` is its location", () => {
    const ref = parseDigestReference(`oci-layout:/srv/data/../data/layouts/staging/@${DIGEST}`);
    expect(`${ref.registry}/${ref.repository}`).toBe("oci-layout:/srv/data/layouts/staging");
    expect(ref.digest).toBe(DIGEST);
    expect(formatReference(ref)).toBe(`oci-layout:/srv/data/layouts/staging@${DIGEST}`);
    expect(parseRepositoryReference("oci-layout:/srv/l")).toEqual({
      registry: "oci-layout:",
      repository: "srv/l",
    });
  });

  it("refuses a relative directory, a bad digest, a missing digest and the root", () => {
    expect(codeOf(() => parseReference(`oci-layout:./l@${DIGEST}`))).toBe("bad_request");
    expect(codeOf(() => parseReference("oci-layout:/l@sha256:abc"))).toBe("bad_request");
    expect(codeOf(() => parseDigestReference("oci-layout:/l"))).toBe("tag_reference");
    expect(codeOf(() => parseReference(`oci-layout:/@${DIGEST}`))).toBe("bad_request");
  });

  it("makes a command line's relative layout absolute against its working directory", () => {
    expect(absoluteLayoutReference(`oci-layout:l/s@${DIGEST}`, "/w")).toBe(`oci-layout:/w/l/s@${DIGEST}`);
    expect(absoluteLayoutReference("127.0.0.1:5000/a/b", "/w")).toBe("127.0.0.1:5000/a/b");
  });

  it("opens only the layouts it was given; a missing one reads empty and is created by its first write", async () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), "ferry-lazy-")), "production");
    const client = new RegistryClient({ registries: [], layouts: [`oci-layout:${dir}`] });
    expect(codeOf(() => client.repositoryOf(parseRepositoryReference("oci-layout:/etc")))).toBe("forbidden");
    const layout = client.repositoryOf(parseRepositoryReference(`oci-layout:${dir}`));
    expect(await layout.findManifest(DIGEST)).toBeUndefined();
    expect(await layout.listTags()).toEqual([]);
    expect(await layout.listReferrers(DIGEST)).toEqual([]);
    const digest = await writeDemoImage(layout, "latest");
    expect(await layout.hasManifest(digest)).toBe(true);
    expect(await layout.listTags()).toEqual(["latest"]);
  });
});
