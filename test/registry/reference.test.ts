import { describe, expect, it } from "vitest";
import {
  formatReference,
  parseDigestReference,
  parseReference,
  parseRepositoryReference,
} from "../../src/registry/reference.ts";
import { codeOf } from "../support/outcomes.ts";

const D = `sha256:${"ab".repeat(32)}`;

describe("parseReference", () => {
  it.each([
    [`127.0.0.1:5000/team/app@${D}`, { registry: "127.0.0.1:5000", repository: "team/app", digest: D }],
    [
      "registry.example.com/a/b/c:v1.2",
      { registry: "registry.example.com", repository: "a/b/c", tag: "v1.2" },
    ],
    ["localhost/app:latest", { registry: "localhost", repository: "app", tag: "latest" }],
    ["localhost:5000/app", { registry: "localhost:5000", repository: "app" }],
    ["[::1]:5000/my_app/x-y__z.w", { registry: "[::1]:5000", repository: "my_app/x-y__z.w" }],
    [`ghcr.io/o/r:v1@${D}`, { registry: "ghcr.io", repository: "o/r", tag: "v1", digest: D }],
  ])("parses %s", (text, expected) => {
    expect(parseReference(text)).toEqual(expected);
    expect(formatReference(parseReference(text))).toBe(text);
  });

  it.each([
    `library/nginx@${D}`, // no registry host: Ferry has no default registry
    "nginx",
    "127.0.0.1:5000",
    "127.0.0.1:5000/Team/app", // upper case in the path
    "127.0.0.1:5000/team//app",
    "127.0.0.1:5000/app:bad tag",
    "127.0.0.1:5000/app@sha256:abc", // too short
    `127.0.0.1:5000/app@sha256:${"AB".repeat(32)}`, // upper-case hex is not canonical
    `127.0.0.1:5000/app@md5:${"ab".repeat(16)}`, // an algorithm Ferry cannot verify
    "-bad.example.com/app",
    `r.example.com/${"a".repeat(260)}`,
  ])("refuses %s with bad_request", (text) => {
    expect(codeOf(() => parseReference(text))).toBe("bad_request");
  });

  it("explains a missing registry host", () => {
    expect(() => parseReference("team/app:v1")).toThrow(/registry\.example\.com\/team\/app:v1/);
  });
});

describe("parseDigestReference", () => {
  it("keeps the digest and drops a tag beside it", () => {
    expect(parseDigestReference(`r.example.com/app:v1@${D}`)).toEqual({
      registry: "r.example.com",
      repository: "app",
      digest: D,
    });
  });

  it("refuses a tag with tag_reference and says how to find the digest", () => {
    expect(codeOf(() => parseDigestReference("r.example.com/team/app:v1"))).toBe("tag_reference");
    expect(codeOf(() => parseDigestReference("r.example.com/team/app"))).toBe("tag_reference");
    expect(() => parseDigestReference("r.example.com/team/app:v1")).toThrow(
      /crane digest r\.example\.com\/team\/app:v1.*skopeo inspect --format/,
    );
    // A loopback registry is plain http: the hint's commands must say so, or they fail on TLS.
    expect(() => parseDigestReference("127.0.0.1:5000/team/app:v1")).toThrow(
      /crane digest --insecure 127\.0\.0\.1:5000\/team\/app:v1.*skopeo inspect --tls-verify=false --format/,
    );
    expect(() => parseDigestReference("localhost:5000/team/app:v1")).toThrow(/--tls-verify=false/);
  });
});

describe("parseRepositoryReference", () => {
  it("accepts a repository and refuses a tag or digest", () => {
    expect(parseRepositoryReference("127.0.0.1:5000/prod/app")).toEqual({
      registry: "127.0.0.1:5000",
      repository: "prod/app",
    });
    expect(codeOf(() => parseRepositoryReference("127.0.0.1:5000/prod/app:v1"))).toBe("bad_request");
    expect(codeOf(() => parseRepositoryReference(`127.0.0.1:5000/prod/app@${D}`))).toBe("bad_request");
  });
});
