import { isIP } from "node:net";

/**
 * True for a loopback IP literal (127.0.0.0/8, ::1, or ::ffff:127.x). Host names, even `localhost`,
 * are not loopback here: a name is resolved through DNS or /etc/hosts, and neither is part of the
 * trust Ferry places in an issuer's config.
 */
export function isLoopbackHostname(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const family = isIP(host);
  if (family === 4) return host.startsWith("127.");
  if (family === 6) return host === "::1" || /^::ffff:127\./.test(host) || /^::ffff:7f/.test(host);
  return false;
}

/**
 * Why `url` may not be fetched for an issuer, or undefined when it may: HTTPS always; plain http
 * only to a loopback IP literal and only when the issuer's config says `allowInsecureHttp`. URLs
 * with credentials in them are refused (they would leak into logs and redirects).
 */
export function fetchableUrlProblem(url: string, allowInsecureHttp: boolean): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a URL";
  }
  if (parsed.username !== "" || parsed.password !== "") return "must not carry credentials";
  if (parsed.protocol === "https:") return undefined;
  if (parsed.protocol !== "http:") return "must be https";
  if (!isLoopbackHostname(parsed.hostname))
    return "must be https (plain http is allowed only for a loopback IP address)";
  if (!allowInsecureHttp) return "is plain http; set allowInsecureHttp: true (loopback only) to allow it";
  return undefined;
}
