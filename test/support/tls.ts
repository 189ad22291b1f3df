import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LOOPBACK } from "./net.ts";
import { runOk } from "./proc.ts";

/** A key and certificate, PEM. */
export interface TlsMaterial {
  key: string;
  cert: string;
}

/**
 * A self-signed certificate for the loopback address, made by the `openssl` CLI (Node has no X.509
 * writer) in `dir`: what a server behind a private CA looks like to a client that lacks the CA.
 */
export async function selfSignedCertificate(dir: string): Promise<TlsMaterial> {
  const keyFile = join(dir, "tls-key.pem");
  const certFile = join(dir, "tls-cert.pem");
  await runOk("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    `/CN=${LOOPBACK}`,
    "-addext",
    `subjectAltName=IP:${LOOPBACK}`,
  ]);
  return { key: await readFile(keyFile, "utf8"), cert: await readFile(certFile, "utf8") };
}
