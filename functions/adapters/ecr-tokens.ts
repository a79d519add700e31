/**
 * ECR authorization tokens: minted with the function's own credentials, or with a cluster's role
 * assumed through STS under a session policy. Cached per (credentials, session policy, region);
 * concurrent misses share one call.
 */
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { AssumeRoleCommand, type STSClient } from "@aws-sdk/client-sts";
import { sha256Hex } from "../core/auth.ts";
import { sessionPolicyFor } from "../core/session-policy.ts";
import { reuseUntil, tokenExpiry } from "../core/token-lifetime.ts";
import { type CacheSource, ExpiringCache } from "../lib/expiring-cache.ts";

export interface EcrToken {
  readonly region: string;
  readonly username: string;
  readonly password: string;
  /** The earliest of ECR's expiresAt and the expiry of the credentials that minted it. */
  readonly expiresAtMs: number;
}

/** Who asks for a token: the parts of a cluster record that decide which credentials mint it. */
export interface TokenRequester {
  readonly clusterId: string;
  readonly roleArn?: string | undefined;
  readonly repositories?: readonly string[] | undefined;
}

/** A failure an operator can act on, with the HTTP status the admission denial carries. */
export class CredentialError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "CredentialError";
    this.status = status;
  }
}

interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

export interface EcrTokenProviderOptions {
  readonly sts: STSClient;
  /** ECR client for a region; credentials are given when minting with an assumed role. */
  readonly ecrClient?: (region: string, credentials?: AwsCredentials) => ECRClient;
  readonly now: () => number;
  /** AssumeRole session length. Role chaining from Lambda caps it at one hour. */
  readonly assumeRoleDurationSeconds?: number;
  /** Never serve a cached token with less than this left. */
  readonly minimumRemainingMs?: number;
}

export class EcrTokenProvider {
  readonly #options: EcrTokenProviderOptions;
  readonly #ownCredentialClients = new Map<string, ECRClient>();
  readonly #tokens: ExpiringCache<string, EcrToken>;
  readonly #roleCredentials: ExpiringCache<string, AwsCredentials>;

  constructor(options: EcrTokenProviderOptions) {
    this.#options = options;
    this.#tokens = new ExpiringCache({ maxEntries: 2000, now: options.now });
    this.#roleCredentials = new ExpiringCache({ maxEntries: 1000, now: options.now });
  }

  async tokenFor(
    requester: TokenRequester,
    region: string,
    signal: AbortSignal,
  ): Promise<{ token: EcrToken; source: CacheSource }> {
    const policy = sessionPolicyOrError(requester.repositories);
    const identity =
      requester.roleArn === undefined
        ? "self"
        : `${requester.clusterId}|${requester.roleArn}|${sha256Hex(policy ?? "")}`;
    const { value, source } = await this.#tokens.getOrLoad(`${identity}|${region}`, async () => {
      const fetchedAtMs = this.#options.now();
      const credentials =
        requester.roleArn === undefined
          ? undefined
          : await this.#assumedCredentials(
              identity,
              requester.roleArn,
              policy,
              requester.clusterId,
              signal,
            );
      const token = await this.#fetchToken(region, credentials, signal);
      return { value: token, serveUntilMs: this.#reuseUntil(fetchedAtMs, token.expiresAtMs) };
    });
    return { token: value, source };
  }

  #reuseUntil(fetchedAtMs: number, expiresAtMs: number): number {
    return reuseUntil(fetchedAtMs, expiresAtMs, this.#options.minimumRemainingMs);
  }

  async #assumedCredentials(
    key: string,
    roleArn: string,
    policy: string | undefined,
    clusterId: string,
    signal: AbortSignal,
  ): Promise<AwsCredentials> {
    const { value } = await this.#roleCredentials.getOrLoad(key, async () => {
      const fetchedAtMs = this.#options.now();
      const credentials = await this.#assumeRole(roleArn, policy, clusterId, signal);
      return {
        value: credentials,
        serveUntilMs: this.#reuseUntil(fetchedAtMs, credentials.expiration.getTime()),
      };
    });
    return value;
  }

  async #assumeRole(
    roleArn: string,
    policy: string | undefined,
    clusterId: string,
    signal: AbortSignal,
  ): Promise<AwsCredentials> {
    try {
      const result = await this.#options.sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: `ecr-anywhere-${clusterId}`.slice(0, 64),
          DurationSeconds: this.#options.assumeRoleDurationSeconds ?? 3600,
          Policy: policy,
        }),
        { abortSignal: signal },
      );
      const credentials = result.Credentials;
      if (
        !credentials?.AccessKeyId ||
        !credentials.SecretAccessKey ||
        !credentials.SessionToken ||
        !credentials.Expiration
      ) {
        throw new CredentialError(502, `STS AssumeRole on ${roleArn} returned no credentials`);
      }
      return {
        accessKeyId: credentials.AccessKeyId,
        secretAccessKey: credentials.SecretAccessKey,
        sessionToken: credentials.SessionToken,
        expiration: credentials.Expiration,
      };
    } catch (error) {
      throw explainStsError(error, roleArn);
    }
  }

  async #fetchToken(
    region: string,
    credentials: AwsCredentials | undefined,
    signal: AbortSignal,
  ): Promise<EcrToken> {
    const client = this.#clientFor(region, credentials);
    try {
      const result = await client.send(new GetAuthorizationTokenCommand({}), {
        abortSignal: signal,
      });
      const data = result.authorizationData?.[0];
      if (!data?.authorizationToken || !data.expiresAt) {
        throw new CredentialError(502, `ECR GetAuthorizationToken in ${region} returned no token`);
      }
      const decoded = Buffer.from(data.authorizationToken, "base64").toString("utf8");
      const separator = decoded.indexOf(":");
      if (separator <= 0)
        throw new CredentialError(502, `ECR in ${region} returned a token in an unknown format`);
      return {
        region,
        username: decoded.slice(0, separator),
        password: decoded.slice(separator + 1),
        expiresAtMs: tokenExpiry(data.expiresAt.getTime(), credentials?.expiration.getTime()),
      };
    } catch (error) {
      throw explainEcrError(error, region);
    } finally {
      if (credentials) client.destroy();
    }
  }

  #clientFor(region: string, credentials: AwsCredentials | undefined): ECRClient {
    const create =
      this.#options.ecrClient ?? ((r, c) => new ECRClient({ region: r, credentials: c }));
    if (credentials) return create(region, credentials);
    let client = this.#ownCredentialClients.get(region);
    if (client === undefined) {
      client = create(region);
      this.#ownCredentialClients.set(region, client);
    }
    return client;
  }
}

function sessionPolicyOrError(repositories: readonly string[] | undefined): string | undefined {
  try {
    return sessionPolicyFor(repositories);
  } catch (error) {
    throw new CredentialError(400, `cluster record: ${(error as Error).message}`);
  }
}

const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "LimitExceededException",
]);
const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "ExpiredToken",
]);

function awsErrorParts(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message.slice(0, 300) };
  return { name: "Error", message: String(error).slice(0, 300) };
}

function isTimeout(name: string): boolean {
  return name === "AbortError" || name === "TimeoutError";
}

function explainEcrError(error: unknown, region: string): Error {
  if (error instanceof CredentialError) return error;
  const { name, message } = awsErrorParts(error);
  if (isTimeout(name)) {
    return new CredentialError(
      504,
      `timed out waiting for ECR GetAuthorizationToken in ${region}; try again shortly`,
    );
  }
  if (THROTTLING.has(name)) {
    return new CredentialError(
      429,
      `ECR is throttling GetAuthorizationToken in ${region}; try again shortly (if it persists, raise the ECR quota or reduce how often Secrets are written)`,
    );
  }
  if (DENIED.has(name)) {
    return new CredentialError(
      403,
      `AWS denied ecr:GetAuthorizationToken in ${region} (${name}): ${message} Check the IAM policy of the role that mints tokens for this cluster.`,
    );
  }
  return new CredentialError(
    502,
    `ECR GetAuthorizationToken failed in ${region} (${name}): ${message}`,
  );
}

function explainStsError(error: unknown, roleArn: string): Error {
  if (error instanceof CredentialError) return error;
  const { name, message } = awsErrorParts(error);
  if (isTimeout(name))
    return new CredentialError(504, `timed out assuming role ${roleArn}; try again shortly`);
  if (THROTTLING.has(name))
    return new CredentialError(
      429,
      `STS is throttling AssumeRole on ${roleArn}; try again shortly`,
    );
  if (DENIED.has(name)) {
    return new CredentialError(
      403,
      `the webhook cannot assume role ${roleArn} (${name}): ${message} Check that the role's trust policy allows the ecr-anywhere webhook role and that the webhook may call sts:AssumeRole on it.`,
    );
  }
  return new CredentialError(502, `STS AssumeRole on ${roleArn} failed (${name}): ${message}`);
}
