import { describe, expect, it } from "vitest";
import { createLogger, fingerprint } from "../../src/common/logger.ts";
import { startTestFerry } from "../support/ferry.ts";

describe("logging", () => {
  it("redacts tokens, passwords and keys wherever they appear", () => {
    const lines: string[] = [];
    const logger = createLogger("info", { write: (line: string) => lines.push(line) });
    logger.info(
      {
        req: { headers: { authorization: "Bearer eyJhbGciOi.secret.sig", cookie: "s=1" } },
        body: { subject_token: "eyJ.subject.token", password: "hunter2", privateKey: "-----BEGIN" },
        aws: { secretAccessKey: "AKIA/secret", sessionToken: "FwoG-session" },
        token: "top-level-token",
      },
      "exchange",
    );
    const text = lines.join("");
    for (const secret of [
      "eyJhbGciOi",
      "s=1",
      "eyJ.subject",
      "hunter2",
      "BEGIN",
      "AKIA/secret",
      "FwoG-session",
      "top-level-token",
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain("[redacted]");
    expect(JSON.parse(text).msg).toBe("exchange");
  });

  it("fingerprints a secret as its SHA-256", () => {
    expect(fingerprint("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("never writes a request's Authorization header to the request log", async () => {
    const ferry = await startTestFerry();
    try {
      await fetch(`${ferry.url}/v1/nothing`, {
        headers: { authorization: "Bearer very-secret-token-value" },
      });
      expect(ferry.logs.some((l) => l.msg === "request completed")).toBe(true);
      expect(ferry.logText()).not.toContain("very-secret-token-value");
    } finally {
      await ferry.close();
    }
  });
});
