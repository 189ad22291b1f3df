import { createHash } from "node:crypto";
import { z } from "zod";
import type { ReadableCandidate } from "./candidate.ts";
import { IN_TOTO_PAYLOAD } from "./media.ts";

const statementSchema = z.object({
  _type: z.enum(["https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"]),
  subject: z
    .array(z.object({ name: z.string().optional(), digest: z.record(z.string(), z.string()) }))
    .min(1),
  predicateType: z.string().min(1),
  predicate: z.unknown().optional(),
});

/** A signed in-toto statement. */
export type Statement = z.infer<typeof statementSchema>;

const simpleSigningSchema = z.object({
  critical: z.object({
    identity: z.object({ "docker-reference": z.string() }).optional(),
    image: z.object({ "docker-manifest-digest": z.string() }),
    type: z.literal("cosign container image signature"),
  }),
});

/** What a candidate's signed content says, read only after its signature verified. */
export type SignedContent =
  | { kind: "simple-signing"; manifestDigest: string; dockerReference?: string }
  | { kind: "message-digest"; digest: string }
  | { kind: "statement"; statement: Statement }
  | { kind: "unreadable"; message: string };

/** Reads the signed content of a candidate: the statement in its DSSE envelope, or its signed payload. */
export function signedContent(candidate: ReadableCandidate): SignedContent {
  const content = candidate.bundle.content;
  try {
    if (content.$case === "dsseEnvelope") {
      const envelope = content.dsseEnvelope;
      if (envelope.payloadType !== IN_TOTO_PAYLOAD) {
        return { kind: "unreadable", message: `DSSE payload type ${envelope.payloadType} is not in-toto` };
      }
      return {
        kind: "statement",
        statement: statementSchema.parse(JSON.parse(envelope.payload.toString("utf8"))),
      };
    }
    if (candidate.format === "cosign-signature" && candidate.artifact) {
      const payload = simpleSigningSchema.parse(JSON.parse(candidate.artifact.toString("utf8")));
      const reference = payload.critical.identity?.["docker-reference"];
      return {
        kind: "simple-signing",
        manifestDigest: payload.critical.image["docker-manifest-digest"],
        ...(reference !== undefined ? { dockerReference: reference } : {}),
      };
    }
    const artifact = candidate.artifact ?? Buffer.alloc(0);
    return {
      kind: "message-digest",
      digest: `sha256:${createHash("sha256").update(artifact).digest("hex")}`,
    };
  } catch (err) {
    return {
      kind: "unreadable",
      message: `signed content is malformed: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`,
    };
  }
}

/** True when the statement names `digest` (`sha256:<hex>`) among its subjects. */
export function statementCovers(statement: Statement, digest: string): boolean {
  const [algorithm, hex] = digest.split(":");
  return statement.subject.some((s) => s.digest[algorithm!]?.toLowerCase() === hex);
}
