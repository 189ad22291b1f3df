import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../../src/config/load.ts";

const SECRET = `whsec_${Buffer.alloc(32, 1).toString("base64")}`;

function load(notifications: unknown[], env: Record<string, string> = {}) {
  const text = stringify({ store: { sqlite: "./ferry.db" }, keys: { signing: "./k.pem" }, notifications });
  return parseConfigText(text, "/etc/ferry/ferry.yaml", env);
}

function problems(notifications: unknown[], env: Record<string, string> = {}) {
  try {
    load(notifications, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error("expected the config to be refused");
}

describe("notifications config", () => {
  it("takes the secret from ${VAR}, fills in the defaults", () => {
    const { config } = load(
      [{ url: "https://hooks.example.com/ferry", events: ["promoted"], secret: "${HOOK_SECRET}" }],
      {
        HOOK_SECRET: SECRET,
      },
    );
    expect(config.notifications[0]).toMatchObject({
      url: "https://hooks.example.com/ferry",
      format: "standard",
      secret: SECRET,
      allowInsecure: false,
      timeout: 10_000,
      retry: { maxAttempts: 48, maxAge: 86_400_000, initialDelay: 2_000, maxDelay: 900_000 },
    });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      "credentials in the URL",
      { url: "https://user:pw@hooks.example.com/x" },
      /^notifications\[0\]\.url: must not carry credentials/,
    ],
    ["a non-http scheme", { url: "file:///etc/passwd" }, /^notifications\[0\]\.url: must be an https URL/],
    [
      "a non-http scheme (ftp)",
      { url: "ftp://hooks.example.com/x" },
      /^notifications\[0\]\.url: must be an https URL/,
    ],
    [
      "plain http to a host name",
      { url: "http://hooks.example.com/x" },
      /^notifications\[0\]\.url: is plain http/,
    ],
    [
      "plain http to localhost (a name, not a loopback address)",
      { url: "http://localhost:9/x" },
      /^notifications\[0\]\.url: is plain http/,
    ],
    ["not a URL", { url: "hooks" }, /^notifications\[0\]\.url: is not a URL/],
    [
      "a standard receiver without a secret",
      { secret: undefined },
      /^notifications\[0\]\.secret: is required/,
    ],
    [
      "a secret without whsec_",
      { secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" },
      /^notifications\[0\]\.secret: must start with "whsec_"/,
    ],
    ["a short secret", { secret: "whsec_c2VjcmV0" }, /^notifications\[0\]\.secret: must hold 24 to 64 bytes/],
    [
      "a secret that is not base64",
      { secret: "whsec_not base64!" },
      /^notifications\[0\]\.secret: must be "whsec_" followed by base64/,
    ],
    [
      "a slack receiver with a secret",
      { format: "slack" },
      /^notifications\[0\]\.secret: a slack receiver is not signed/,
    ],
    ["an unknown event", { events: ["deployed"] }, /^notifications\[0\]\.events\[0\]: /],
    ["no events", { events: [] }, /^notifications\[0\]\.events: /],
  ])("refuses %s, with its path", (_name, over, expected) => {
    const receiver = { url: "https://hooks.example.com/x", events: ["promoted"], secret: SECRET, ...over };
    const found = problems([receiver]);
    expect(
      found.some((p) => expected.test(p)),
      found.join("\n"),
    ).toBe(true);
    // The URL itself (a Slack webhook URL is a secret) is never repeated in a problem.
    expect(found.join("\n")).not.toContain("user:pw");
  });

  it("allows plain http to a loopback address, and elsewhere only with allowInsecure", () => {
    expect(
      load([{ url: "http://127.0.0.1:9/x", events: ["failed"], secret: SECRET }]).config.notifications,
    ).toHaveLength(1);
    expect(
      load([{ url: "http://hooks.internal/x", events: ["failed"], secret: SECRET, allowInsecure: true }])
        .config.notifications,
    ).toHaveLength(1);
  });

  it("refuses two receivers of one name (by default, the URL's host)", () => {
    const found = problems([
      { url: "https://hooks.example.com/a", events: ["promoted"], secret: SECRET },
      { url: "https://hooks.example.com/b", events: ["failed"], secret: SECRET },
    ]);
    expect(found).toContain(
      'notifications[1].name: receiver name "hooks.example.com" is also notifications[0]\'s; give each receiver a unique name',
    );
  });
});
