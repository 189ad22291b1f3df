import type { Signer } from "@sigstore/verify";
import { EXTENSION_OIDS, type ExtensionName } from "./authorities.ts";

/** The identity in a verified Fulcio-style certificate. */
export interface CertificateIdentity {
  subject: string | undefined;
  issuer: string | undefined;
  extensions: Partial<Record<ExtensionName, string>>;
}

/** Reads a DER UTF8String (tag 0x0c); Fulcio's v2 extensions hold one. */
function derUtf8(value: Buffer): string | undefined {
  if (value[0] !== 0x0c || value.length < 2) return undefined;
  let len = value[1]!;
  let offset = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | value[2 + i]!;
    offset = 2 + n;
  }
  return value.subarray(offset, offset + len).toString("utf8");
}

/** The identity of a signer verified by `@sigstore/verify`; undefined for a key signer. */
export function certificateIdentity(signer: Signer): CertificateIdentity | undefined {
  const identity = signer.identity;
  if (!identity) return undefined;
  const extensions: Partial<Record<ExtensionName, string>> = {};
  for (const [name, oid] of Object.entries(EXTENSION_OIDS) as [ExtensionName, string][]) {
    const found = identity.oids?.find((o) => o.oid?.id.join(".") === oid);
    const text = found ? derUtf8(Buffer.from(found.value)) : undefined;
    if (text !== undefined) extensions[name] = text;
  }
  return {
    subject: identity.subjectAlternativeName,
    issuer: extensions.issuer ?? identity.extensions?.issuer,
    extensions,
  };
}
