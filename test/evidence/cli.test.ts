/**
 * `ferry evidence ID --out DIR`: the folder it writes is checked by a third party with the commands
 * its README.txt lists, run as written (real cosign, `ferry audit verify`) in a fresh folder with
 * nothing but the files; each tampered file makes its check fail.
 */
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runFerry } from "../support/cli.ts";
import { findCosign } from "../support/cosign.ts";
import { run } from "../support/proc.ts";
import { type EvidenceFixture, startEvidenceFixture } from "./fixture.ts";

const MAIN = path.resolve(import.meta.dirname, "../../src/cli/main.ts");

let f: EvidenceFixture;
let promotedId: string;
let rejectedId: string;
let bin: string;

/** The README's commands: its lines that run cosign or ferry. */
function commandsOf(dir: string): string[] {
  return readFileSync(path.join(dir, "README.txt"), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("cosign ") || l.startsWith("ferry "));
}

/** Runs one README command in `dir` as a third party would: only cosign and ferry on PATH, offline. */
async function check(dir: string, command: string) {
  return run("bash", ["-c", command], {
    cwd: dir,
    env: {
      PATH: `${bin}:${path.dirname(findCosign())}:/usr/bin:/bin`,
      HOME: dir,
      // Nothing of the checks needs the network: a dead proxy makes any attempt fail at once.
      HTTPS_PROXY: "http://127.0.0.1:9",
      HTTP_PROXY: "http://127.0.0.1:9",
    },
  });
}

async function exportEvidence(id: string): Promise<string> {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "ferry-evidence-out-")), "evidence");
  const res = await runFerry(["evidence", id, "--out", out], {
    env: { FERRY_SERVER: f.ferry.url, FERRY_TOKEN: await f.tokenOf("auditor") },
  });
  expect(res.code, res.stderr).toBe(0);
  expect(res.stdout).toContain("README.txt");
  return out;
}

/** A fresh copy of an exported folder, as a third party receives it. */
function copyOf(dir: string): string {
  const to = path.join(mkdtempSync(path.join(tmpdir(), "ferry-evidence-copy-")), "evidence");
  cpSync(dir, to, { recursive: true });
  return to;
}

beforeAll(async () => {
  f = await startEvidenceFixture();
  bin = mkdtempSync(path.join(tmpdir(), "ferry-bin-"));
  writeFileSync(path.join(bin, "ferry"), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(path.join(bin, "ferry"), 0o755);
  const approved = (await f.image()).digest;
  promotedId = await f.toProduction(approved);
  for (const who of ["rm1", "rm2"] as const)
    expect(
      (await f.call(who, "POST", `/v1/promotions/${promotedId}/approvals`, { decision: "approve" })).status,
    ).toBe(200);
  expect((await f.until(promotedId, ["promoted", "failed"])).state).toBe("promoted");
  rejectedId = await f.toProduction((await f.image()).digest);
  const reject = await f.call("rm3", "POST", `/v1/promotions/${rejectedId}/approvals`, {
    decision: "reject",
    comment: "wrong build",
  });
  expect(reject.status, JSON.stringify(reject.json)).toBe(200);
});

afterAll(async () => {
  await f?.stop();
});

describe("ferry evidence", () => {
  let dir: string;

  it("writes the summary, the approvals, the audit segment, the checkpoint and Ferry's key, with a README", async () => {
    dir = await exportEvidence(promotedId);
    expect(readdirSync(dir).sort()).toEqual([
      "README.txt",
      "approvals",
      "audit.jsonl",
      "checkpoint.json",
      "checkpoint.json.sig",
      "ferry.pub",
      "subject.manifest",
      "summary.dsse.json",
    ]);
    expect(readdirSync(path.join(dir, "approvals")).sort()).toEqual([
      "01-approve-rm-1.json",
      "02-approve-rm-2.json",
    ]);
    expect(readFileSync(path.join(dir, "ferry.pub"), "utf8")).toBe(f.ferry.signingKey.publicKeyPem);
    const commands = commandsOf(dir);
    expect(commands).toHaveLength(5);
    expect(commands.filter((c) => c.startsWith("cosign verify-blob-attestation"))).toHaveLength(3);
  });

  it("refuses to write into a folder that is not empty", async () => {
    const res = await runFerry(["evidence", promotedId, "--out", dir], {
      env: { FERRY_SERVER: f.ferry.url, FERRY_TOKEN: await f.tokenOf("main") },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("not empty");
  });

  it("is checked by the README's commands as written, on a fresh copy: real cosign and ferry audit verify", async () => {
    const copy = copyOf(dir);
    for (const command of commandsOf(copy)) {
      const res = await check(copy, command);
      expect(res.code, `${command}\n${res.stdout}\n${res.stderr}`).toBe(0);
    }
    const audit = await check(
      copy,
      "ferry audit verify --file audit.jsonl --checkpoint checkpoint.json --key ferry.pub",
    );
    expect(audit.stdout).toMatch(/^audit segment ok: entries \d+\.\.\d+/);
  });

  /** Runs the README command that mentions `file` on a copy where `tamper` changed it: it must fail. */
  async function tampered(
    file: string,
    tamper: (bytes: Buffer) => Buffer,
    commandHas: string,
  ): Promise<void> {
    const copy = copyOf(dir);
    writeFileSync(path.join(copy, file), tamper(readFileSync(path.join(copy, file))));
    const commands = commandsOf(copy).filter((c) => c.includes(commandHas));
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      const res = await check(copy, command);
      expect(res.code, `${command} passed on a tampered ${file}`).not.toBe(0);
    }
  }

  it("fails when an audit entry was edited", async () => {
    await tampered(
      "audit.jsonl",
      (b) => Buffer.from(b.toString().replace('"outcome":"approved"', '"outcome":"rejected"')),
      "ferry audit verify",
    );
  });

  it("fails when an audit entry was removed", async () => {
    await tampered(
      "audit.jsonl",
      (b) => {
        const lines = b.toString().trimEnd().split("\n");
        lines.splice(1, 1);
        return Buffer.from(`${lines.join("\n")}\n`);
      },
      "ferry audit verify",
    );
  });

  it("fails when the summary's statement was changed", async () => {
    await tampered(
      "summary.dsse.json",
      (b) => {
        const envelope = JSON.parse(b.toString());
        const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString());
        statement.predicate.verificationResult = "FAILED";
        envelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
        return Buffer.from(JSON.stringify(envelope));
      },
      "summary.dsse.json",
    );
  });

  it("fails when an approval names another approver", async () => {
    await tampered(
      "approvals/01-approve-rm-1.json",
      (b) => {
        const envelope = JSON.parse(b.toString());
        const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString());
        statement.predicate.approver.subject = "mallory";
        envelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
        return Buffer.from(JSON.stringify(envelope));
      },
      "01-approve-rm-1.json",
    );
  });

  it("fails when the statements are checked against another manifest", async () => {
    await tampered("subject.manifest", (b) => Buffer.concat([b, Buffer.from(" ")]), "subject.manifest");
  });

  it("fails when the checkpoint was changed", async () => {
    await tampered(
      "checkpoint.json",
      (b) => Buffer.from(b.toString().replace(/"size":(\d+)/, (_m, n) => `"size":${Number(n) + 1}`)),
      "checkpoint.json",
    );
  });

  it("writes a rejected promotion's signed rejection, checkable as its README says", async () => {
    expect((await f.until(rejectedId, ["rejected"])).state).toBe("rejected");
    const out = copyOf(await exportEvidence(rejectedId));
    expect(readdirSync(out)).not.toContain("summary.dsse.json");
    expect(readdirSync(path.join(out, "approvals"))).toEqual(["01-reject-rm-3.json"]);
    const commands = commandsOf(out);
    expect(commands.some((c) => c.includes("01-reject-rm-3.json"))).toBe(true);
    for (const command of commands) {
      const res = await check(out, command);
      expect(res.code, `${command}\n${res.stderr}`).toBe(0);
    }
  });
});
