import {
  AssumeRoleCommand,
  type AssumeRoleCommandOutput,
  AssumeRoleWithWebIdentityCommand,
  STSClient,
  type STSClientConfig,
} from "@aws-sdk/client-sts";
import { type Clock, systemClock } from "../common/clock.ts";
import { IdentityError } from "../identity/errors.ts";
import { durationSeconds, roleSessionName, sessionTags, sourceIdentity } from "./aws-names.ts";
import { type CredentialMinter, type IssuedCredential, type MintRequest, TOKEN_TYPES } from "./ports.ts";

/** Options of {@link AwsStsMinter}. */
export interface AwsStsMinterOptions {
  /**
   * Ferry's own AWS identity for AssumeRole. Absent: the SDK's default credential chain
   * (environment, shared config, web identity, container and instance metadata).
   */
  credentials?: STSClientConfig["credentials"];
  /** Turns STS's absolute `Expiration` into `expires_in`. */
  clock?: Clock;
  /** Per-request deadline (default 5 s); the SDK retries throttling, 5xx and timeouts up to 3 attempts. */
  requestTimeoutMs?: number;
}

/** STS errors that mean "try again later" rather than "no". */
const TRANSIENT = new Set(["Throttling", "ThrottlingException", "RequestTimeout", "RegionDisabledException"]);

type StsError = Error & { $fault?: "client" | "server"; $metadata?: { httpStatusCode?: number } };

/**
 * Mints `aws-sts` credentials through `@aws-sdk/client-sts`:
 * - `assume-role`: Ferry calls AssumeRole with its own AWS identity, a RoleSessionName naming the
 *   run, SourceIdentity, session tags from claims, the optional inline session policy, and
 *   DurationSeconds = min(ttl, role maximum), at least 900;
 * - `web-identity`: AssumeRoleWithWebIdentity with the pipeline's own token (no Ferry credentials;
 *   tags and source identity then come from the token, as AWS defines for that call).
 */
export class AwsStsMinter implements CredentialMinter {
  readonly #options: AwsStsMinterOptions;
  readonly #clients = new Map<string, STSClient>();
  readonly #clock: Clock;

  constructor(options: AwsStsMinterOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  #client(region: string, endpoint: string | undefined): STSClient {
    const key = `${region}|${endpoint ?? ""}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = new STSClient({
        region,
        ...(endpoint === undefined ? {} : { endpoint }),
        ...(this.#options.credentials === undefined ? {} : { credentials: this.#options.credentials }),
        maxAttempts: 3,
        // The SDK's own timers, not the injected Clock: they only bound the STS network I/O.
        requestHandler: { requestTimeout: this.#options.requestTimeoutMs ?? 5_000, connectionTimeout: 2_000 },
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  async mint({ credential, token, subjectToken }: MintRequest): Promise<IssuedCredential> {
    const aws = credential.aws;
    if (aws === undefined) throw new IdentityError("internal", "the credential has no aws section");
    const client = this.#client(aws.region, aws.endpoint);
    const common = {
      RoleArn: aws.roleArn,
      RoleSessionName: roleSessionName(token),
      DurationSeconds: durationSeconds(credential.ttl, aws.maxSessionDuration),
      ...(aws.sessionPolicy === undefined ? {} : { Policy: aws.sessionPolicy }),
    };
    let output: Pick<AssumeRoleCommandOutput, "Credentials">;
    try {
      output =
        aws.mode === "web-identity"
          ? await client.send(
              new AssumeRoleWithWebIdentityCommand({ ...common, WebIdentityToken: subjectToken }),
            )
          : await client.send(
              new AssumeRoleCommand({
                ...common,
                SourceIdentity: sourceIdentity(token),
                ...(aws.sessionTags === undefined ? {} : { Tags: sessionTags(token, aws.sessionTags) }),
              }),
            );
    } catch (err) {
      throw classify(err as StsError, credential.name);
    }
    const c = output.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw new IdentityError("credential_refused", "STS answered without credentials", {
        detail: { credential: credential.name },
      });
    }
    const expiresAt = c.Expiration.getTime();
    return {
      accessToken: c.SessionToken,
      issuedTokenType: TOKEN_TYPES.accessToken,
      tokenType: "N_A",
      expiresIn: Math.max(0, Math.floor((expiresAt - this.#clock.now()) / 1000)),
      expiresAt,
      id: c.AccessKeyId,
      aws: {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration.toISOString(),
      },
    };
  }
}

function classify(err: StsError, credential: string): IdentityError {
  if (err instanceof IdentityError) return err;
  const status = err.$metadata?.httpStatusCode;
  const detail = { credential, stsCode: err.name, status, problem: err.message?.slice(0, 300) };
  if (status === undefined || err.$fault === "server" || status >= 500 || TRANSIENT.has(err.name)) {
    return new IdentityError("credential_unavailable", "AWS STS is unavailable; retry later", {
      cause: err,
      detail,
    });
  }
  return new IdentityError("credential_refused", `AWS STS refused the credential (${err.name})`, {
    cause: err,
    detail,
  });
}
