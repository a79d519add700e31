/**
 * The credentials a mint plan (core/token-scoping.ts) names: none for the function's own, an
 * assumed role's session, or a federated session from the token broker. Sessions are cached per
 * (cluster, principal, session policy) while a token minted from them still gets its full life
 * (core/token-lifetime.ts); concurrent misses share one STS call.
 */
import {
  AssumeRoleCommand,
  type Credentials,
  GetFederationTokenCommand,
  STSClient,
} from "@aws-sdk/client-sts";
import {
  BROKER_KEY_CACHE_MS,
  type BrokerKeyStore,
  type StoredBrokerKey,
} from "../core/broker-key.ts";
import { credentialsReuseUntil } from "../core/token-lifetime.ts";
import { FEDERATION_SESSION_SECONDS, type MintPlan } from "../core/token-scoping.ts";
import type { AwsCredentials } from "../core/tokens.ts";
import { ExpiringCache } from "../lib/expiring-cache.ts";
import {
  type AwsCall,
  awsErrorParts,
  CredentialError,
  explainAwsError,
  KEY_REFUSED,
} from "./aws-errors.ts";

/** As long as an admission's whole budget: a request may join the read in flight. */
const PREFETCH_TIMEOUT_MS = 8000;

/** Where sts:GetFederationToken is sent from: an STS client holding the broker's key. */
export interface BrokerSts {
  client(signal: AbortSignal): Promise<STSClient>;
  /** The key was refused (replaced, deleted): read it again before the next call. */
  invalidate(): void;
}

/** The function's own credentials federate: local runs with an IAM user's keys, and moto. */
export function ownCredentialsBroker(sts: STSClient): BrokerSts {
  return { client: async () => sts, invalidate: () => undefined };
}

/**
 * The broker's key from where the rotation function stores it, read at most once an hour per
 * execution environment (and again at once when STS refuses it), with one STS client per key.
 */
export class StoredKeyBroker implements BrokerSts {
  readonly #store: Pick<BrokerKeyStore, "read">;
  readonly #keys: ExpiringCache<"key", StoredBrokerKey>;
  readonly #now: () => number;
  #client: { readonly accessKeyId: string; readonly client: STSClient } | undefined;

  constructor(store: Pick<BrokerKeyStore, "read">, now: () => number) {
    this.#store = store;
    this.#keys = new ExpiringCache({ maxEntries: 1, now });
    this.#now = now;
  }

  /**
   * One whose key is already being read: a cold environment reads it beside the cluster record
   * instead of after it, and the first mint waits for one call less. A failed read is not kept.
   */
  static prefetched(store: Pick<BrokerKeyStore, "read">, now: () => number): StoredKeyBroker {
    const broker = new StoredKeyBroker(store, now);
    broker.client(AbortSignal.timeout(PREFETCH_TIMEOUT_MS)).catch(() => undefined);
    return broker;
  }

  async client(signal: AbortSignal): Promise<STSClient> {
    const { value: key } = await this.#keys.getOrLoad("key", async () => {
      const stored = await this.#store.read(signal).catch((error: unknown) => {
        const { name, message } = awsErrorParts(error);
        throw new CredentialError(503, `cannot read the token broker's key (${name}): ${message}`);
      });
      // The rotation function stores the first key while the stack deploys.
      if (stored === undefined)
        throw new CredentialError(
          503,
          "the token broker has no access key yet: see its rotation function's log",
        );
      return { value: stored, serveUntilMs: this.#now() + BROKER_KEY_CACHE_MS };
    });
    if (this.#client?.accessKeyId !== key.accessKeyId) {
      this.#client?.client.destroy();
      const credentials = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
      this.#client = { accessKeyId: key.accessKeyId, client: new STSClient({ credentials }) };
    }
    return this.#client.client;
  }

  invalidate(): void {
    this.#keys.delete("key");
  }
}

export interface TokenSessionsOptions {
  /** STS with the function's own credentials: AssumeRole. */
  readonly sts: STSClient;
  /** GetFederationToken. Default: the function's own credentials. */
  readonly broker?: BrokerSts;
  readonly now: () => number;
  /** AssumeRole session length. Role chaining from Lambda caps it at one hour. */
  readonly assumeRoleDurationSeconds?: number;
  readonly minimumRemainingMs?: number;
}

export class TokenSessions {
  readonly #options: TokenSessionsOptions;
  readonly #broker: BrokerSts;
  readonly #sessions: ExpiringCache<string, AwsCredentials>;

  constructor(options: TokenSessionsOptions) {
    this.#options = options;
    this.#broker = options.broker ?? ownCredentialsBroker(options.sts);
    this.#sessions = new ExpiringCache({ maxEntries: 1000, now: options.now });
  }

  /** The plan's credentials; undefined when the function's own mint. */
  async credentialsFor(plan: MintPlan, signal: AbortSignal): Promise<AwsCredentials | undefined> {
    if (plan.via === "own") return undefined;
    const { value } = await this.#sessions.getOrLoad(plan.sessionKey, async () => {
      const fetchedAtMs = this.#options.now();
      const credentials =
        plan.via === "federation"
          ? await this.#federate(plan.name, plan.policy, signal)
          : await this.#assumeRole(plan.roleArn, plan.sessionName, plan.policy, signal);
      return {
        value: credentials,
        serveUntilMs: credentialsReuseUntil(
          fetchedAtMs,
          credentials.expiration.getTime(),
          this.#options.minimumRemainingMs,
        ),
      };
    });
    return value;
  }

  async #assumeRole(
    roleArn: string,
    sessionName: string,
    policy: string | undefined,
    signal: AbortSignal,
  ): Promise<AwsCredentials> {
    try {
      const result = await this.#options.sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: sessionName,
          DurationSeconds: this.#options.assumeRoleDurationSeconds ?? 3600,
          Policy: policy,
        }),
        { abortSignal: signal },
      );
      return sessionCredentials(result.Credentials, `STS AssumeRole on ${roleArn}`);
    } catch (error) {
      throw explainAwsError(error, assumeRoleCall(roleArn));
    }
  }

  /** One retry with the key read again when STS refuses the key: it was replaced meanwhile. */
  async #federate(name: string, policy: string, signal: AbortSignal): Promise<AwsCredentials> {
    try {
      return await this.#getFederationToken(name, policy, signal);
    } catch (error) {
      if (!KEY_REFUSED.has(awsErrorParts(error).name))
        throw explainAwsError(error, FEDERATION_CALL);
      this.#broker.invalidate();
      try {
        return await this.#getFederationToken(name, policy, signal);
      } catch (again) {
        if (KEY_REFUSED.has(awsErrorParts(again).name)) this.#broker.invalidate();
        throw explainAwsError(again, FEDERATION_CALL);
      }
    }
  }

  async #getFederationToken(
    name: string,
    policy: string,
    signal: AbortSignal,
  ): Promise<AwsCredentials> {
    const client = await this.#broker.client(signal);
    const result = await client.send(
      new GetFederationTokenCommand({
        Name: name,
        DurationSeconds: FEDERATION_SESSION_SECONDS,
        Policy: policy,
      }),
      { abortSignal: signal },
    );
    return sessionCredentials(result.Credentials, "STS GetFederationToken");
  }
}

function sessionCredentials(credentials: Credentials | undefined, call: string): AwsCredentials {
  if (
    !credentials?.AccessKeyId ||
    !credentials.SecretAccessKey ||
    !credentials.SessionToken ||
    !credentials.Expiration
  ) {
    throw new CredentialError(502, `${call} returned no credentials`);
  }
  return {
    accessKeyId: credentials.AccessKeyId,
    secretAccessKey: credentials.SecretAccessKey,
    sessionToken: credentials.SessionToken,
    expiration: credentials.Expiration,
  };
}

function assumeRoleCall(roleArn: string): AwsCall {
  return {
    service: "STS",
    operation: `AssumeRole on ${roleArn}`,
    denied: `the webhook cannot assume role ${roleArn}`,
    check:
      "Check that the role's trust policy allows the ecr-anywhere webhook role and that the webhook may call sts:AssumeRole on it.",
  };
}

const FEDERATION_CALL: AwsCall = {
  service: "STS",
  operation: "GetFederationToken",
  denied: "the token broker cannot federate a session",
  check: "Check the broker user's policy and its key's rotation function's log.",
};
