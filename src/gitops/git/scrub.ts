/**
 * Removes anything that looks like a credential from text that came out of git, ssh or the remote
 * (stderr, a push's status line), so that it can be kept in an error and logged. `secrets` are the
 * known ones (the token); the patterns catch the shapes of the others (userinfo in a URL, an
 * Authorization header, forge tokens, a private key block).
 */
export function scrubCredentials(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (const form of new Set([
      secret,
      encodeURIComponent(secret),
      Buffer.from(secret).toString("base64"),
    ])) {
      out = out.split(form).join("[redacted]");
    }
  }
  return (
    out
      // scheme://user:password@host → scheme://host (userinfo is never shown, even a bare login).
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi, "$1")
      .replace(/(authorization:\s*)(?:(?:basic|bearer|token)\s+)?\S+/gi, "$1[redacted]")
      .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, "$1 [redacted]")
      .replace(/\b(?:gh[pousr]_|github_pat_|glpat-|gldt-|glrt-)[A-Za-z0-9_-]{8,}/g, "[redacted]")
      .replace(
        /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
        "[redacted]",
      )
  );
}

/** The last lines of git's stderr, scrubbed and capped: enough to say why, never a wall of text. */
export function gitDiagnostic(stderr: string, secrets: readonly string[]): string {
  const lines = scrubCredentials(stderr, secrets)
    .split(/\r?\n/)
    .map((l) => l.trim())
    // Progress and hints say nothing about the failure.
    .filter(
      (l) =>
        l !== "" &&
        !/^hint:/.test(l) &&
        !/^(remote: )?(Counting|Compressing|Enumerating|Receiving|Resolving|Writing|Total)\b/.test(l),
    );
  const text = lines.slice(-6).join("; ");
  return text.length > 600 ? `…${text.slice(-600)}` : text;
}
