import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { APPROVAL_PREDICATE_TYPE } from "../evidence/approval.ts";
import { VSA_PREDICATE_TYPE } from "../evidence/vsa.ts";
import { CliError, type CliIo } from "./io.ts";
import { addServerOptions, connect, type ServerOptions } from "./server-options.ts";

interface EvidenceOpts extends ServerOptions {
  out?: string;
}

const Envelope = z.looseObject({
  payloadType: z.string(),
  payload: z.string(),
  signatures: z.array(z.unknown()),
});
const Signed = z.looseObject({ predicateType: z.string(), envelope: Envelope });

/** `GET /v1/promotions/{id}/evidence`, as the CLI reads it (docs/evidence.md). */
const EvidenceAnswer = z.looseObject({
  promotion: z.looseObject({
    id: z.string(),
    app: z.string(),
    environment: z.string(),
    digest: z.string(),
    state: z.string(),
    targetRepository: z.string(),
  }),
  key: z.looseObject({ id: z.string(), publicKey: z.string() }),
  subject: z.looseObject({ digest: z.string(), manifest: z.string() }).nullable(),
  summary: Signed.nullable(),
  approvals: z.array(
    Signed.extend({
      decision: z.enum(["approve", "reject"]),
      attached: z.boolean(),
      statement: z.looseObject({
        predicate: z.looseObject({ approver: z.looseObject({ subject: z.string() }) }),
      }),
    }),
  ),
  audit: z
    .looseObject({
      from: z.number(),
      size: z.number(),
      checkpoint: z.looseObject({ body: z.string(), signature: z.string() }),
      entries: z.array(z.looseObject({ seq: z.number() })).optional(),
      omitted: z.string().optional(),
    })
    .nullable(),
});
type EvidenceAnswer = z.infer<typeof EvidenceAnswer>;

/** A file name part from free text (an approver's subject): letters, digits, `.`, `_`, `-`. */
function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 40) || "x";
}

const COSIGN_BLOB = "cosign verify-blob-attestation --key ferry.pub --insecure-ignore-tlog=true";

/** The files of an evidence folder, by relative path, and the README listing how to check each. */
export function evidenceFiles(e: EvidenceAnswer): Map<string, string | Uint8Array> {
  const files = new Map<string, string | Uint8Array>();
  const p = e.promotion;
  const checks: string[] = [];
  files.set("ferry.pub", e.key.publicKey);
  if (e.subject !== null) files.set("subject.manifest", Buffer.from(e.subject.manifest, "base64"));
  if (e.summary !== null) {
    files.set("summary.dsse.json", `${JSON.stringify(e.summary.envelope)}\n`);
    checks.push(
      "# The signed SLSA verification summary, against the promoted manifest (its sha256 is the digest):",
      `${COSIGN_BLOB} --type ${VSA_PREDICATE_TYPE} --signature summary.dsse.json subject.manifest`,
    );
  }
  e.approvals.forEach((a, i) => {
    const who = a.statement.predicate.approver.subject;
    const name = `approvals/${String(i + 1).padStart(2, "0")}-${a.decision}-${slug(who)}.json`;
    files.set(name, `${JSON.stringify(a.envelope)}\n`);
    checks.push(
      a.attached && e.subject !== null
        ? `# ${a.decision} by ${who}, attached to the promoted digest:\n${COSIGN_BLOB} --type ${APPROVAL_PREDICATE_TYPE} --signature ${name} subject.manifest`
        : `# ${a.decision} by ${who} (not attached: nothing was promoted). The digest is not in this folder, so only the\n# signature is checked; the statement's subject must read ${p.digest}:\n${COSIGN_BLOB} --type ${APPROVAL_PREDICATE_TYPE} --check-claims=false --signature ${name} /dev/null`,
    );
  });
  const audit = e.audit;
  if (audit !== null) {
    files.set("checkpoint.json", audit.checkpoint.body);
    files.set("checkpoint.json.sig", audit.checkpoint.signature);
    checks.push(
      "# The audit checkpoint, signed by Ferry's key:",
      "cosign verify-blob --key ferry.pub --insecure-ignore-tlog=true --signature checkpoint.json.sig checkpoint.json",
    );
    if (audit.entries !== undefined) {
      files.set("audit.jsonl", audit.entries.map((x) => `${JSON.stringify(x)}\n`).join(""));
      checks.push(
        `# The audit entries ${audit.from}..${audit.size} (the promotion's, and what was logged between), chained to the checkpoint:`,
        "ferry audit verify --file audit.jsonl --checkpoint checkpoint.json --key ferry.pub",
      );
    } else checks.push(`# The audit entries are not in this folder: ${audit.omitted ?? "omitted"}`);
  }
  files.set(
    "README.txt",
    [
      `Evidence of Ferry promotion ${p.id}: ${p.app} ${p.digest} to ${p.environment} (${p.state}),`,
      `target ${p.targetRepository}. Run these commands in this folder (cosign 2.5 or later).`,
      "",
      `First check that ferry.pub is Ferry's key as you know it from a trusted channel (\`ferry keys export\`,`,
      `its operator): it is the key id ${e.key.id}. Every check below rests on it.`,
      "",
      ...checks,
      "",
    ].join("\n"),
  );
  return files;
}

/** Registers `ferry evidence ID --out DIR`: writes a promotion's evidence as files a third party checks. */
export function registerEvidence(program: Command, io: CliIo): void {
  addServerOptions(
    program
      .command("evidence")
      .description(
        "write a promotion's evidence (signed summary, approval attestations, audit entries and checkpoint) as files checkable with cosign and `ferry audit verify`",
      )
      .argument("<id>", "the promotion's id")
      .option("--out <dir>", "the folder to write (created; must be empty if it exists)"),
  ).action(async (id: string, opts: EvidenceOpts) => {
    if (!opts.out) throw new CliError("evidence needs --out DIR");
    const out = path.resolve(opts.out);
    const client = await connect(opts, io);
    const { data } = await client.get(`/v1/promotions/${encodeURIComponent(id)}/evidence`, EvidenceAnswer);
    mkdirSync(out, { recursive: true });
    if (readdirSync(out).length > 0) throw new CliError(`${opts.out} is not empty: pick a new folder`);
    const files = evidenceFiles(data);
    for (const [name, content] of files) {
      mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
      writeFileSync(path.join(out, name), content);
    }
    io.out(`wrote ${files.size} files to ${opts.out}; README.txt lists the commands that check them\n`);
  });
}
