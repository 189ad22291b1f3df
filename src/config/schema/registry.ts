/** The registries Ferry may talk to, their credentials, and how its OCI client behaves. */
import { z } from "zod";
import { duration } from "../duration.ts";
import { d, httpUrl, positiveInt } from "./base.ts";

const registry = z.strictObject({
  url: httpUrl.meta(
    d("The registry's base URL, e.g. `https://registry.example.com` or `http://127.0.0.1:5000`."),
  ),
  auth: z
    .strictObject({
      username: z.string().min(1),
      password: z.string().min(1).meta(d("Use `${VAR}` so the secret stays out of the file.")),
    })
    .optional()
    .meta(d("Credentials for basic auth or the bearer token flow. Anonymous when absent.")),
  aliases: z
    .array(z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'expected "host" or "host:port"'))
    .optional()
    .meta(d("Other `host[:port]` names image references use for this registry (e.g. `docker.io`).")),
  tokenRealms: z
    .array(httpUrl)
    .optional()
    .meta(
      d(
        "Bearer token endpoints on another origin that may receive this registry's credentials (e.g. `https://auth.docker.io/token`). A realm on the registry's own origin is always allowed; any other is refused.",
      ),
    ),
  blobRedirects: z
    .array(httpUrl)
    .optional()
    .meta(
      d(
        "Origins blob downloads may be redirected to (object storage, a CDN). Requests there never carry credentials; a redirect to any other host is refused.",
      ),
    ),
  insecure: z
    .boolean()
    .optional()
    .meta(
      d("Allow plain http to a registry that is not on a loopback address (credentials travel in clear)."),
    ),
});

const loopbackHost = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

export const registries = z
  .array(registry)
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((reg, i) => {
      // An invalid URL is reported by its own schema; these checks need a parsed one.
      if (typeof reg?.url !== "string" || !URL.canParse(reg.url)) return;
      const url = new URL(reg.url);
      if (url.protocol === "http:" && !loopbackHost.test(url.hostname) && reg.insecure !== true) {
        ctx.addIssue({
          code: "custom",
          path: [i, "url"],
          message: "plain http is only allowed for loopback registries; use https, or set `insecure: true`",
        });
      }
      if (url.pathname !== "/" || url.search !== "") {
        ctx.addIssue({ code: "custom", path: [i, "url"], message: "expected a base URL with no path" });
      }
      for (const host of [url.host, ...(Array.isArray(reg.aliases) ? reg.aliases : [])]) {
        const first = seen.get(host);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [i, "url"],
            message: `registry host "${host}" is also registries[${first}]; each host names one registry`,
          });
        } else seen.set(host, i);
      }
    });
  })
  .default([])
  .meta(d("The only registries Ferry will contact: no request goes to any other host, even by redirect."));

export const registryClient = z
  .strictObject({
    timeout: duration
      .prefault("30s")
      .meta(d("A registry request fails when nothing (headers or bytes) arrives for this long.")),
    retries: z
      .int()
      .min(0)
      .max(10)
      .default(3)
      .meta(
        d("Retries of a request that failed with 408, 429, 5xx or a connection error (jittered backoff)."),
      ),
    parallelism: positiveInt.default(4).meta(d("Transfers a copy runs at once.")),
    attestationMaxBytes: positiveInt
      .default(16 * 1024 * 1024)
      .meta(d("The largest signature, attestation or SBOM blob Ferry reads into memory, in bytes.")),
  })
  .prefault({})
  .meta(d("How Ferry talks to registries."));
