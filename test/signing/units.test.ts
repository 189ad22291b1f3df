import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { publicKeyHint, signatureLayer, signStatement } from "../../src/signing/attachments.ts";
import { pae, simpleSigningPayload } from "../../src/signing/formats.ts";
import { generateSigningKeyPem, parseSigningKey } from "../../src/signing/keys.ts";
import { checkPredicate, PREDICATE_TYPES } from "../../src/signing/predicates.ts";
import { keySigner } from "../../src/signing/signer.ts";

const key = parseSigningKey(generateSigningKeyPem(), "test");
const signer = keySigner(key);
const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("signing formats", () => {
  it("DSSE PAE is the spec's byte layout", () => {
    const out = new TextDecoder().decode(
      pae("application/vnd.in-toto+json", new TextEncoder().encode("hello")),
    );
    expect(out).toBe("DSSEv1 28 application/vnd.in-toto+json 5 hello");
  });

  it("the simple-signing payload is cosign's, with annotations only when given", () => {
    const plain = JSON.parse(new TextDecoder().decode(simpleSigningPayload("r.example:5000/a/b", DIGEST)));
    expect(plain).toEqual({
      critical: {
        identity: { "docker-reference": "r.example:5000/a/b" },
        image: { "docker-manifest-digest": DIGEST },
        type: "cosign container image signature",
      },
      optional: null,
    });
    const annotated = JSON.parse(new TextDecoder().decode(simpleSigningPayload("r/a", DIGEST, { run: "7" })));
    expect(annotated.optional).toEqual({ run: "7" });
  });

  it("a .sig layer carries a DER ECDSA signature over exactly its payload", async () => {
    const layer = await signatureLayer(signer, "r/a", DIGEST, { "ferry.run": "1" });
    const sig = Buffer.from(layer.descriptor.annotations!["dev.cosignproject.cosign/signature"]!, "base64");
    const pub = createPublicKey(key.publicKeyPem);
    expect(verify("sha256", layer.bytes, { key: pub, dsaEncoding: "der" }, sig)).toBe(true);
    expect(
      verify("sha256", new Uint8Array([...layer.bytes, 32]), { key: pub, dsaEncoding: "der" }, sig),
    ).toBe(false);
  });

  it("attestations are in-toto Statement v1 about exactly this digest, signed over the PAE", async () => {
    const { envelope } = await signStatement(signer, "r/a", DIGEST, PREDICATE_TYPES.spdx, { x: 1 });
    const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString());
    expect(statement).toEqual({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "r/a", digest: { sha256: "ab".repeat(32) } }],
      predicateType: PREDICATE_TYPES.spdx,
      predicate: { x: 1 },
    });
    const signed = pae(envelope.payloadType, Buffer.from(envelope.payload, "base64"));
    const sig = Buffer.from(envelope.signatures[0]!.sig, "base64");
    expect(
      verify("sha256", signed, { key: createPublicKey(key.publicKeyPem), dsaEncoding: "der" }, sig),
    ).toBe(true);
  });

  it("the bundle key hint is base64 SHA-256 of the DER public key, as cosign writes it", () => {
    const der = createPublicKey(key.publicKeyPem).export({ format: "der", type: "spki" });
    expect(Buffer.from(publicKeyHint(signer), "base64").toString("hex")).toBe(key.id);
    expect(der.length).toBeGreaterThan(0);
  });
});

describe("predicates", () => {
  const LIMIT = 4096;
  it("accepts SPDX 2.x and 3, CycloneDX and SLSA v1", () => {
    expect(
      checkPredicate(
        PREDICATE_TYPES.spdx,
        { spdxVersion: "SPDX-2.3", SPDXID: "SPDXRef-DOCUMENT", name: "n", dataLicense: "CC0-1.0" },
        LIMIT,
      ),
    ).toBeUndefined();
    expect(
      checkPredicate(
        PREDICATE_TYPES.spdx,
        {
          "@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
          "@graph": [{ type: "SpdxDocument" }],
        },
        LIMIT,
      ),
    ).toBeUndefined();
    expect(
      checkPredicate(PREDICATE_TYPES.cyclonedx, { bomFormat: "CycloneDX", specVersion: "1.6" }, LIMIT),
    ).toBeUndefined();
    expect(
      checkPredicate(
        PREDICATE_TYPES.slsaProvenanceV1,
        { buildDefinition: { buildType: "b", externalParameters: {} }, runDetails: { builder: { id: "i" } } },
        LIMIT,
      ),
    ).toBeUndefined();
  });

  it("says what is wrong and where", () => {
    expect(
      checkPredicate(PREDICATE_TYPES.cyclonedx, { bomFormat: "SPDX", specVersion: "1.6" }, LIMIT),
    ).toMatchObject({ kind: "invalid", message: expect.stringContaining("bomFormat") });
    expect(checkPredicate(PREDICATE_TYPES.slsaProvenanceV1, { buildDefinition: {} }, LIMIT)).toMatchObject({
      kind: "invalid",
    });
    expect(checkPredicate("https://slsa.dev/provenance/v0.2", {}, LIMIT)).toMatchObject({
      kind: "unknown_type",
    });
    expect(
      checkPredicate(
        PREDICATE_TYPES.cyclonedx,
        { bomFormat: "CycloneDX", specVersion: "1.6", pad: "x".repeat(LIMIT) },
        LIMIT,
      ),
    ).toMatchObject({
      kind: "too_large",
    });
  });

  it("openapi.yaml lists exactly the predicate types Ferry attests", () => {
    const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8"));
    const item = spec.components.schemas.SignatureRequest.properties.attestations.items;
    expect([...item.properties.predicateType.enum].sort()).toEqual(Object.values(PREDICATE_TYPES).sort());
    expect(spec.paths["/v1/signatures"].post.security).toEqual([{ bearer: [] }]);
  });
});
