import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { isFinal } from "../../src/promotion/states.ts";
import { githubClaims } from "../identity/fixtures.ts";
import { type FerryRun, runFerry } from "./cli.ts";
import { callApi } from "./ferry.ts";
import { getFreePort, waitForHttp } from "./net.ts";
import type { OidcIssuer } from "./oidc-issuer.ts";

export const AUD = "https://ferry.test";

/** A JSON answer, read loosely by the tests. */
// biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field and assert on them
export type Json = Record<string, any>;

/** A `ferry serve` child process on a fixed port, so a restart answers at the same URL. */
export interface ServeProcess {
  url: string;
  child: ChildProcess;
  exited: Promise<FerryRun>;
  kill(): Promise<FerryRun>;
}

/** Writes `config` (with a free fixed port) into `dir`/ferry.yaml and returns the file and URL. */
export async function writeServeConfig(
  dir: string,
  config: Record<string, unknown>,
  name = "ferry.yaml",
): Promise<{ file: string; url: string }> {
  const port = await getFreePort();
  const file = path.join(dir, name);
  writeFileSync(
    file,
    stringify({
      dev: true,
      server: { listen: `127.0.0.1:${port}`, publicUrl: AUD },
      keys: { signing: "./signing.pem" },
      log: { level: "info" },
      ...config,
    }),
  );
  return { file, url: `http://127.0.0.1:${port}` };
}

/** Starts `ferry serve --config file` and waits until it is ready. */
export async function serve(file: string, url: string): Promise<ServeProcess> {
  let child: ChildProcess | undefined;
  const exited = runFerry(["serve", "--config", file], {
    onStart: (c) => {
      child = c;
    },
  });
  let done: FerryRun | undefined;
  void exited.then((r) => {
    done = r;
  });
  await waitForHttp(`${url}/readyz`, {
    timeoutMs: 30_000,
    accept: (s) => s === 200,
    abort: () =>
      done === undefined
        ? undefined
        : `ferry serve exited ${done.code}: ${done.stderr}${done.stdout.slice(-2000)}`,
  });
  return {
    url,
    child: child!,
    exited,
    async kill() {
      child!.kill("SIGKILL");
      return exited;
    },
  };
}

/** A client of one Ferry URL with fresh GitHub tokens. */
export function client(github: OidcIssuer, url: () => string) {
  const token = () => github.sign(githubClaims({ iss: github.url, aud: AUD }));
  return {
    async call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
      const { status, json } = await callApi({ url: url() }, await token(), method, route, body, headers);
      return { status, json: json as Json };
    },
    /** Long-polls until the promotion has finished (or `until` holds). */
    async until(id: string, done: (p: Json) => boolean, rounds = 60): Promise<Json> {
      for (let i = 0; i < rounds; i++) {
        const { status, json } = await this.call("GET", `/v1/promotions/${id}?wait=2s`);
        if (status === 200 && done(json)) return json;
      }
      throw new Error(`promotion ${id} never reached the expected state`);
    },
  };
}

export const isFinished = (p: Json) => isFinal(p.state);
