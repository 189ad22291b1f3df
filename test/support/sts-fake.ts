import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LOOPBACK } from "./net.ts";

/** An IAM role the fake knows, with its maximum session duration (seconds; AWS default 3600). */
export interface FakeRole {
  maxSessionDuration?: number;
}

/** Options of {@link startStsFake}. */
export interface StsFakeOptions {
  /** Access key id → secret of the callers allowed to sign AssumeRole requests. */
  callers: Record<string, string>;
  /** Role ARN → role. A role not listed answers AccessDenied, as STS does for a role you may not assume. */
  roles: Record<string, FakeRole>;
  /** Region the signatures must be scoped to (default us-east-1). */
  region?: string;
}

/** What the fake received in one call (after it passed or failed its checks). */
export interface StsCall {
  action: string;
  params: Record<string, string>;
  /** `Tags.member.N.Key/Value`, gathered. */
  tags: { Key: string; Value: string }[];
  /** The signing access key id, when the request was signed. */
  accessKeyId: string | undefined;
  /** `ok`, or the STS error code answered. */
  outcome: string;
}

/** A running fake; see {@link startStsFake}. */
export interface StsFake {
  url: string;
  calls: StsCall[];
  /** Makes the next `n` calls fail with this status and STS error code (throttling, outages). */
  failNext(n: number, status: number, code: string): void;
  stop(): Promise<void>;
}

const NS = "https://sts.amazonaws.com/doc/2011-06-15/";
/** RoleSessionName and SourceIdentity: `[\w+=,.@-]*`. */
const NAME = /^[\w+=,.@-]*$/;
/** Session tag keys and values: letters, digits, spaces and `_.:/=+-@`. */
const TAG = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

class StsError extends Error {
  readonly status: number;
  readonly code: string;
  readonly type: "Sender" | "Receiver";

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.type = status >= 500 ? "Receiver" : "Sender";
  }
}

const xmlEscape = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!,
  );

function validation(message: string): never {
  throw new StsError(400, "ValidationError", message);
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/**
 * Checks an AWS Signature Version 4 `Authorization` header the way STS does: algorithm, credential
 * scope (date, region, service `sts`), a known access key, the request time within 15 minutes, and
 * the signature itself over the canonical request. Returns the access key id.
 */
function verifySigV4(
  req: IncomingMessage,
  body: string,
  callers: Record<string, string>,
  region: string,
): string {
  const header = req.headers.authorization;
  if (!header)
    throw new StsError(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      header,
    );
  if (!match) throw new StsError(400, "IncompleteSignature", "Authorization header is not a SigV4 signature");
  const [, accessKeyId, date, scopeRegion, service, signedHeaders, signature] = match as unknown as string[];
  const secret = callers[accessKeyId!];
  if (secret === undefined) {
    throw new StsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
  }
  if (scopeRegion !== region || service !== "sts") {
    throw new StsError(
      403,
      "SignatureDoesNotMatch",
      `Credential should be scoped to a valid region and service sts`,
    );
  }
  const amzDate = String(req.headers["x-amz-date"] ?? "");
  const at = Date.parse(
    amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"),
  );
  if (!amzDate.startsWith(date!) || !Number.isFinite(at) || Math.abs(Date.now() - at) > 15 * 60_000) {
    throw new StsError(
      403,
      "SignatureDoesNotMatch",
      "Signature expired or X-Amz-Date is not in the scope date",
    );
  }
  const names = signedHeaders!.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date")) {
    throw new StsError(403, "SignatureDoesNotMatch", "host and x-amz-date must be signed");
  }
  const canonicalHeaders = names
    .map(
      (n) =>
        `${n}:${String(req.headers[n] ?? "")
          .trim()
          .replace(/\s+/g, " ")}\n`,
    )
    .join("");
  const payloadHash = String(
    req.headers["x-amz-content-sha256"] ?? createHash("sha256").update(body).digest("hex"),
  );
  const [path, query = ""] = (req.url ?? "/").split("?");
  const canonicalQuery = query.split("&").filter(Boolean).sort().join("&");
  const canonicalRequest = [
    req.method,
    path,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join("\n");
  const scope = `${date}/${region}/sts/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region), "sts"), "aws4_request");
  const expected = hmac(key, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature!, "hex"))) {
    throw new StsError(
      403,
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided.",
    );
  }
  return accessKeyId!;
}

function checkName(
  params: Record<string, string>,
  name: string,
  min: number,
  max: number,
  required: boolean,
): void {
  const value = params[name];
  if (value === undefined) {
    if (required)
      validation(
        `1 validation error detected: Value null at '${lower(name)}' failed to satisfy constraint: Member must not be null`,
      );
    return;
  }
  if (value.length < min || value.length > max) {
    validation(
      `1 validation error detected: Value '${value}' at '${lower(name)}' failed to satisfy constraint: Member must have length between ${min} and ${max}`,
    );
  }
  if (!NAME.test(value)) {
    validation(
      `1 validation error detected: Value '${value}' at '${lower(name)}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
    );
  }
}

const lower = (s: string) => s[0]!.toLowerCase() + s.slice(1);

function gatherTags(params: Record<string, string>): { Key: string; Value: string }[] {
  const tags: { Key: string; Value: string }[] = [];
  for (let i = 1; params[`Tags.member.${i}.Key`] !== undefined; i++) {
    tags.push({ Key: params[`Tags.member.${i}.Key`]!, Value: params[`Tags.member.${i}.Value`] ?? "" });
  }
  return tags;
}

function checkTags(tags: { Key: string; Value: string }[]): void {
  if (tags.length > 50)
    validation(
      "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
    );
  const seen = new Set<string>();
  for (const { Key, Value } of tags) {
    if (Key.length < 1 || Key.length > 128 || !TAG.test(Key)) validation(`Tag key ${Key} is invalid`);
    if (Value.length > 256 || !TAG.test(Value)) validation(`Tag value for key ${Key} is invalid`);
    if (/^aws:/i.test(Key)) validation("Tag keys must not start with aws:");
    if (seen.has(Key.toLowerCase()))
      validation("Duplicate tag keys found. Please note that Tag keys are case insensitive.");
    seen.add(Key.toLowerCase());
  }
}

function credentialsXml(durationSeconds: number): string {
  const expiration = new Date(Date.now() + durationSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  return `<Credentials>
      <AccessKeyId>ASIA${randomBytes(8).toString("hex").toUpperCase()}</AccessKeyId>
      <SecretAccessKey>${randomBytes(30).toString("base64")}</SecretAccessKey>
      <SessionToken>${randomBytes(180).toString("base64")}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>`;
}

/**
 * A strict loopback fake of the STS query API (`POST /`, form-encoded, `Version=2011-06-15`):
 * AssumeRole must carry a valid SigV4 signature of a known caller; AssumeRoleWithWebIdentity is
 * unsigned and takes no tags or source identity; parameters are checked against STS's limits and
 * patterns (session name 2-64 `[\w+=,.@-]`, duration 900 s to the role's maximum, policy ≤ 2048,
 * ≤ 50 tags with key ≤ 128 and value ≤ 256 in STS's tag charset, source identity 2-64 not `aws:`).
 * Answers are STS's XML, errors in its `ErrorResponse` form.
 */
export async function startStsFake(options: StsFakeOptions): Promise<StsFake> {
  const region = options.region ?? "us-east-1";
  const calls: StsCall[] = [];
  const failures: { status: number; code: string }[] = [];

  const handle = (req: IncomingMessage, body: string, call: StsCall): string => {
    if (req.method !== "POST" || (req.url ?? "/").split("?")[0] !== "/") {
      throw new StsError(404, "UnknownOperationException", "Unknown operation");
    }
    if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
      throw new StsError(
        400,
        "InvalidParameterValue",
        "Content-Type must be application/x-www-form-urlencoded",
      );
    }
    const params: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(body)) {
      if (k in params) throw new StsError(400, "InvalidParameterValue", `Parameter ${k} given twice`);
      params[k] = v;
    }
    call.action = params.Action ?? "";
    call.params = params;
    call.tags = gatherTags(params);
    if (params.Version !== "2011-06-15")
      throw new StsError(400, "InvalidParameterValue", "Version must be 2011-06-15");
    const failure = failures.shift();
    if (failure) throw new StsError(failure.status, failure.code, "Injected failure");
    if (call.action === "AssumeRole") {
      call.accessKeyId = verifySigV4(req, body, options.callers, region);
    } else if (call.action === "AssumeRoleWithWebIdentity") {
      if (req.headers.authorization)
        throw new StsError(400, "InvalidParameterValue", "AssumeRoleWithWebIdentity is not signed");
      const token = params.WebIdentityToken ?? "";
      if (token.length < 4 || token.length > 20_000)
        validation("WebIdentityToken must have length between 4 and 20000");
      for (const k of Object.keys(params)) {
        if (/^(Tags|SourceIdentity|TransitiveTagKeys)/.test(k))
          throw new StsError(
            400,
            "InvalidParameterValue",
            `${k} is not a parameter of AssumeRoleWithWebIdentity`,
          );
      }
    } else {
      throw new StsError(
        400,
        "InvalidAction",
        `Could not find operation ${call.action} for version 2011-06-15`,
      );
    }
    const arn = params.RoleArn ?? "";
    if (arn.length < 20 || arn.length > 2048) validation("RoleArn must have length between 20 and 2048");
    checkName(params, "RoleSessionName", 2, 64, true);
    if (params.Policy !== undefined && params.Policy.length > 2048) {
      throw new StsError(
        400,
        "PackedPolicyTooLarge",
        "Packed policy consumes more than 100 percent of the allotted size",
      );
    }
    if (params.Policy !== undefined) {
      try {
        JSON.parse(params.Policy);
      } catch {
        throw new StsError(400, "MalformedPolicyDocument", "The policy is not valid JSON");
      }
    }
    if (call.action === "AssumeRole") {
      checkName(params, "SourceIdentity", 2, 64, false);
      if (params.SourceIdentity !== undefined && /^aws:/i.test(params.SourceIdentity))
        validation("SourceIdentity must not start with aws:");
      checkTags(call.tags);
    }
    const role = options.roles[arn];
    if (role === undefined) {
      throw new StsError(
        403,
        "AccessDenied",
        `User: arn:aws:iam::123456789012:user/ferry is not authorized to perform: sts:${call.action} on resource: ${arn}`,
      );
    }
    const duration = Number(params.DurationSeconds ?? "3600");
    if (!Number.isInteger(duration) || duration < 900) validation("DurationSeconds must be at least 900");
    if (duration > (role.maxSessionDuration ?? 3600)) {
      validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
    }
    const session = params.RoleSessionName!;
    const roleName = arn.split("/").pop();
    const account = arn.split(":")[4];
    const source =
      params.SourceIdentity === undefined
        ? ""
        : `\n    <SourceIdentity>${xmlEscape(params.SourceIdentity)}</SourceIdentity>`;
    return `<${call.action}Response xmlns="${NS}">
  <${call.action}Result>${source}
    <AssumedRoleUser>
      <Arn>arn:aws:sts::${account}:assumed-role/${xmlEscape(roleName ?? "")}/${xmlEscape(session)}</Arn>
      <AssumedRoleId>AROA${randomBytes(8).toString("hex").toUpperCase()}:${xmlEscape(session)}</AssumedRoleId>
    </AssumedRoleUser>
    ${credentialsXml(duration)}
    <PackedPolicySize>${params.Policy ? Math.ceil((params.Policy.length / 2048) * 100) : 0}</PackedPolicySize>
  </${call.action}Result>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</${call.action}Response>`;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const call: StsCall = { action: "", params: {}, tags: [], accessKeyId: undefined, outcome: "ok" };
      calls.push(call);
      try {
        const xml = handle(req, body, call);
        res.writeHead(200, { "content-type": "text/xml", "x-amzn-requestid": randomUUID() });
        res.end(xml);
      } catch (err) {
        const e = err instanceof StsError ? err : new StsError(500, "InternalFailure", String(err));
        call.outcome = e.code;
        res.writeHead(e.status, { "content-type": "text/xml", "x-amzn-requestid": randomUUID() });
        res.end(`<ErrorResponse xmlns="${NS}">
  <Error>
    <Type>${e.type}</Type>
    <Code>${e.code}</Code>
    <Message>${xmlEscape(e.message)}</Message>
  </Error>
  <RequestId>${randomUUID()}</RequestId>
</ErrorResponse>`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${LOOPBACK}:${port}`,
    calls,
    failNext(n, status, code) {
      for (let i = 0; i < n; i++) failures.push({ status, code });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
