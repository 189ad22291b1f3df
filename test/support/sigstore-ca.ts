import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { json as canonicalJson } from "@sigstore/core";
import { runOk } from "./proc.ts";

/**
 * A private Sigstore instance for tests: a CA (stand-in Fulcio) that issues short-lived code-signing
 * certificates with Fulcio's identity extensions, and a log key (stand-in Rekor) that signs entry
 * timestamps (SETs) and checkpoints over a real RFC 6962 Merkle tree, plus the TrustedRoot naming
 * both. Certificates are issued by the `openssl` CLI (Node has no X.509 writer).
 */

/** Fulcio's identity in a certificate. */
export interface CertificateIdentitySpec {
  subject: string;
  issuer: string;
  /** Extra Fulcio extensions by OID suffix (`12` → 1.3.6.1.4.1.57264.1.12), as UTF8String. */
  extensions?: Record<number, string>;
  /** Validity window (default: now - 1 min to now + 10 min). */
  notBefore?: Date;
  notAfter?: Date;
}

/** An issued certificate and its private key. */
export interface IssuedCertificate {
  privateKey: KeyObject;
  pem: string;
  der: Buffer;
}

/** Options for a log entry. */
export interface LogEntryOptions {
  /** Sign a SignedEntryTimestamp (default true): the only timestamp sigstore-js takes from a log. */
  set?: boolean;
  /** Add an inclusion proof and a signed checkpoint (default true). */
  proof?: boolean;
  integratedTime?: Date;
}

/** A Rekor-style entry in the serialized bundle form. */
export interface SerializedTlogEntry {
  logIndex: string;
  logId: { keyId: string };
  kindVersion: { kind: string; version: string };
  integratedTime: string;
  inclusionPromise?: { signedEntryTimestamp: string };
  inclusionProof?: {
    logIndex: string;
    rootHash: string;
    treeSize: string;
    hashes: string[];
    checkpoint: { envelope: string };
  };
  canonicalizedBody: string;
}

/** The test instance. */
export interface TestSigstore {
  /** TrustedRoot JSON naming the CA and the log. */
  trustedRoot: Record<string, unknown>;
  /** Writes the TrustedRoot into `dir` and returns its path. */
  writeTrustedRoot(dir: string): Promise<string>;
  issue(identity: CertificateIdentitySpec): Promise<IssuedCertificate>;
  /** Logs a body (a Rekor `dsse` or `hashedrekord` entry) and returns the bundle's tlog entry. */
  logEntry(body: Record<string, unknown>, opts?: LogEntryOptions): SerializedTlogEntry;
}

const LOG_URL = "https://rekor.ferry.test";
const LOG_ORIGIN = "rekor.ferry.test - 1";

const leafHash = (data: Buffer) =>
  createHash("sha256")
    .update(Buffer.from([0]))
    .update(data)
    .digest();
const nodeHash = (l: Buffer, r: Buffer) =>
  createHash("sha256")
    .update(Buffer.from([1]))
    .update(l)
    .update(r)
    .digest();

/** RFC 6962 Merkle tree hash of leaves[lo, hi). */
function treeHash(leaves: Buffer[], lo: number, hi: number): Buffer {
  if (hi - lo === 1) return leaves[lo]!;
  let k = 1;
  while (k * 2 < hi - lo) k *= 2;
  return nodeHash(treeHash(leaves, lo, lo + k), treeHash(leaves, lo + k, hi));
}

/** RFC 6962 audit path for leaf `m` in leaves[lo, hi), leaf first. */
function auditPath(leaves: Buffer[], m: number, lo: number, hi: number): Buffer[] {
  if (hi - lo === 1) return [];
  let k = 1;
  while (k * 2 < hi - lo) k *= 2;
  if (m < lo + k) return [...auditPath(leaves, m, lo, lo + k), treeHash(leaves, lo + k, hi)];
  return [...auditPath(leaves, m, lo + k, hi), treeHash(leaves, lo, lo + k)];
}

function asn1Time(d: Date): string {
  // GeneralizedTime for `openssl ca -startdate/-enddate`: YYYYMMDDHHMMSSZ.
  return `${d.toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;
}

/** Creates the CA and the log key in `dir`. */
export async function createTestSigstore(dir: string): Promise<TestSigstore> {
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.pem");
  await runOk("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKey]);
  await runOk("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    caKey,
    "-out",
    caCert,
    "-days",
    "30",
    "-sha256",
    "-subj",
    "/O=ferry.test/CN=ferry-test-fulcio",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const caDer = Buffer.from(
    (await readFile(caCert, "utf8")).replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""),
    "base64",
  );
  await writeFile(join(dir, "index.txt"), "");
  await writeFile(join(dir, "serial"), "1000\n");
  await writeFile(
    join(dir, "ca.cnf"),
    [
      "[ca]",
      "default_ca = test",
      "[test]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "new_certs_dir = $dir",
      "serial = $dir/serial",
      "default_md = sha256",
      "policy = any",
      "unique_subject = no",
      "copy_extensions = none",
      "[any]",
      "organizationName = optional",
      "",
    ].join("\n"),
  );

  const log = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const logDer = log.publicKey.export({ format: "der", type: "spki" });
  const logId = createHash("sha256").update(logDer).digest();
  const logLeaves: Buffer[] = [];
  // Entries of other users, so proofs have real siblings.
  for (let i = 0; i < 5; i++) logLeaves.push(leafHash(randomBytes(64)));

  const start = new Date(Date.now() - 24 * 3600_000).toISOString();
  const trustedRoot = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [
      {
        baseUrl: LOG_URL,
        hashAlgorithm: "SHA2_256",
        publicKey: {
          rawBytes: logDer.toString("base64"),
          keyDetails: "PKIX_ECDSA_P256_SHA_256",
          validFor: { start },
        },
        logId: { keyId: logId.toString("base64") },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: "ferry.test", commonName: "ferry-test-fulcio" },
        uri: "https://fulcio.ferry.test",
        certChain: { certificates: [{ rawBytes: caDer.toString("base64") }] },
        validFor: { start },
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
  };

  let serial = 0;
  return {
    trustedRoot,
    async writeTrustedRoot(target) {
      const file = join(target, "trusted_root.json");
      await writeFile(file, JSON.stringify(trustedRoot));
      return file;
    },
    async issue(spec) {
      const n = ++serial;
      const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const keyFile = join(dir, `leaf${n}.key`);
      await writeFile(keyFile, key.privateKey.export({ format: "pem", type: "pkcs8" }));
      const csr = join(dir, `leaf${n}.csr`);
      await runOk("openssl", ["req", "-new", "-key", keyFile, "-subj", "/O=ferry.test", "-out", csr]);
      const ext = [
        "[leaf]",
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature",
        "extendedKeyUsage = codeSigning",
        `subjectAltName = critical,${spec.subject.includes("@") && !spec.subject.includes("://") ? "email" : "URI"}:${spec.subject}`,
        `1.3.6.1.4.1.57264.1.1 = DER:${Buffer.from(spec.issuer)
          .toString("hex")
          .replace(/(..)(?!$)/g, "$1:")}`,
        `1.3.6.1.4.1.57264.1.8 = ASN1:UTF8String:${spec.issuer}`,
        ...Object.entries(spec.extensions ?? {}).map(
          ([oid, v]) => `1.3.6.1.4.1.57264.1.${oid} = ASN1:UTF8String:${v}`,
        ),
        "",
      ].join("\n");
      const extFile = join(dir, `leaf${n}.ext`);
      await writeFile(extFile, ext);
      const out = join(dir, `leaf${n}.pem`);
      const notBefore = spec.notBefore ?? new Date(Date.now() - 60_000);
      const notAfter = spec.notAfter ?? new Date(Date.now() + 10 * 60_000);
      await runOk("openssl", [
        "ca",
        "-batch",
        "-notext",
        "-config",
        join(dir, "ca.cnf"),
        "-cert",
        caCert,
        "-keyfile",
        caKey,
        "-in",
        csr,
        "-out",
        out,
        "-extfile",
        extFile,
        "-extensions",
        "leaf",
        "-startdate",
        asn1Time(notBefore),
        "-enddate",
        asn1Time(notAfter),
      ]);
      const pem = await readFile(out, "utf8");
      const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
      return { privateKey: key.privateKey, pem, der };
    },
    logEntry(body, opts = {}) {
      const canonical = Buffer.from(canonicalJson.canonicalize(body), "utf8");
      const index = logLeaves.length;
      logLeaves.push(leafHash(canonical));
      for (let i = 0; i < 3; i++) logLeaves.push(leafHash(randomBytes(64)));
      const size = logLeaves.length;
      const integratedTime = Math.floor((opts.integratedTime ?? new Date()).getTime() / 1000);
      const entry: SerializedTlogEntry = {
        logIndex: String(index),
        logId: { keyId: logId.toString("base64") },
        kindVersion: { kind: String(body.kind), version: String(body.apiVersion) },
        integratedTime: String(integratedTime),
        canonicalizedBody: canonical.toString("base64"),
      };
      if (opts.set ?? true) {
        const payload = canonicalJson.canonicalize({
          body: canonical.toString("base64"),
          integratedTime,
          logIndex: index,
          logID: logId.toString("hex"),
        });
        entry.inclusionPromise = {
          signedEntryTimestamp: sign("sha256", Buffer.from(payload), log.privateKey).toString("base64"),
        };
      }
      if (opts.proof ?? true) {
        const root = treeHash(logLeaves, 0, size);
        const note = `${LOG_ORIGIN}\n${size}\n${root.toString("base64")}\n`;
        const sig = Buffer.concat([logId.subarray(0, 4), sign("sha256", Buffer.from(note), log.privateKey)]);
        entry.inclusionProof = {
          logIndex: String(index),
          rootHash: root.toString("base64"),
          treeSize: String(size),
          hashes: auditPath(logLeaves, index, 0, size).map((h) => h.toString("base64")),
          checkpoint: { envelope: `${note}\n\u2014 rekor.ferry.test ${sig.toString("base64")}\n` },
        };
      }
      return entry;
    },
  };
}
