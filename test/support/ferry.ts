import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { stringify } from "yaml";
import { createLogger } from "../../src/common/logger.ts";
import { parseConfigText } from "../../src/config/load.ts";
import { type RunningFerry, type StartOptions, startFerry } from "../../src/server.ts";

/** A Ferry started in-process for a test, with its log lines captured. */
export interface TestFerry extends RunningFerry {
  dir: string;
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[];
  /** The raw log text, for "never logs X" assertions. */
  logText(): string;
}

/**
 * Starts Ferry on a free loopback port with a fresh SQLite store and signing key in a temp dir.
 * `overrides` are merged over that minimal config (as YAML values, before validation); `options` go
 * to `startFerry` (e.g. Ferry's AWS credentials for tests against the STS fake).
 */
export async function startTestFerry(
  overrides: Record<string, unknown> = {},
  options: Omit<StartOptions, "logger"> = {},
): Promise<TestFerry> {
  const dir = mkdtempSync(path.join(tmpdir(), "ferry-test-"));
  const config = {
    dev: true,
    server: { listen: "127.0.0.1:0" },
    store: { sqlite: "./ferry.db" },
    keys: { signing: "./signing.pem" },
    log: { level: "info" },
    ...overrides,
  };
  const file = path.join(dir, "ferry.yaml");
  writeFileSync(file, stringify(config));
  const loaded = parseConfigText(stringify(config), file, {});
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const logger = createLogger(loaded.config.log.level, sink);
  const ferry = await startFerry(loaded, { ...options, logger });
  const logText = () => chunks.join("");
  return {
    ...ferry,
    dir,
    get logs() {
      return logText()
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    logText,
  };
}
