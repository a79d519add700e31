/**
 * ECR tokens shared by every execution environment of the webhook, in a DynamoDB table encrypted
 * with the stack's key and readable only by the webhook: a cold environment finds the token another
 * one minted instead of calling ECR (and STS) itself. Items are keyed by a hash of the same
 * (credentials, session policy, region) key as the in-memory cache, so a cluster can only ever
 * find a token minted with its own credentials. A short lease lets one environment mint while the
 * others wait for its result.
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { sha256Hex } from "../core/auth.ts";
import type { EcrToken } from "./ecr-tokens.ts";

export interface SharedToken {
  readonly token: EcrToken;
  /** Until when any environment may serve it (the cache reuse rule). */
  readonly reuseUntilMs: number;
}

export interface SharedTokenStore {
  /** The token stored for the key while it may still be served at `nowMs`. */
  read(key: string, nowMs: number, signal: AbortSignal): Promise<SharedToken | undefined>;
  /** Takes the right to mint for `leaseMs`; false when another environment holds it. */
  claim(key: string, nowMs: number, leaseMs: number, signal: AbortSignal): Promise<boolean>;
  write(key: string, shared: SharedToken, signal: AbortSignal): Promise<void>;
}

export class DynamoTokenStore implements SharedTokenStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;

  constructor(table: string, client = new DynamoDBClient({})) {
    this.#table = table;
    this.#client = client;
  }

  async read(key: string, nowMs: number, signal: AbortSignal): Promise<SharedToken | undefined> {
    const { Item } = await this.#client.send(
      new GetItemCommand({ TableName: this.#table, Key: { pk: { S: itemKey(key) } } }),
      { abortSignal: signal },
    );
    const reuseUntilMs = Number(Item?.reuseUntilMs?.N);
    const username = Item?.username?.S;
    const password = Item?.password?.S;
    const region = Item?.region?.S;
    const expiresAtMs = Number(Item?.expiresAtMs?.N);
    if (!username || !password || !region || !(reuseUntilMs > nowMs)) return undefined;
    return {
      token: {
        region,
        fips: Item?.fips?.BOOL === true,
        ecrPublic: Item?.ecrPublic?.BOOL === true,
        username,
        password,
        expiresAtMs,
      },
      reuseUntilMs,
    };
  }

  async claim(key: string, nowMs: number, leaseMs: number, signal: AbortSignal): Promise<boolean> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: { S: itemKey(key) } },
          UpdateExpression: "SET leaseUntilMs = :until, expiresAt = if_not_exists(expiresAt, :ttl)",
          // No live lease, and no token still servable: one written since this environment
          // read the item (the write drops the lease) must be used, not minted again.
          ConditionExpression:
            "(attribute_not_exists(leaseUntilMs) OR leaseUntilMs < :now) AND (attribute_not_exists(reuseUntilMs) OR reuseUntilMs <= :now)",
          ExpressionAttributeValues: {
            ":until": { N: String(nowMs + leaseMs) },
            ":now": { N: String(nowMs) },
            ":ttl": { N: String(Math.ceil((nowMs + leaseMs) / 1000) + 3600) },
          },
        }),
        { abortSignal: signal },
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async write(key: string, shared: SharedToken, signal: AbortSignal): Promise<void> {
    const { token } = shared;
    await this.#client.send(
      new PutItemCommand({
        TableName: this.#table,
        // Replaces the lease too: the token is there for the waiting environments.
        Item: {
          pk: { S: itemKey(key) },
          region: { S: token.region },
          fips: { BOOL: token.fips },
          ecrPublic: { BOOL: token.ecrPublic },
          username: { S: token.username },
          password: { S: token.password },
          expiresAtMs: { N: String(token.expiresAtMs) },
          reuseUntilMs: { N: String(shared.reuseUntilMs) },
          // DynamoDB's TTL (epoch seconds) removes the item once the token has expired.
          expiresAt: { N: String(Math.ceil(token.expiresAtMs / 1000)) },
        },
      }),
      { abortSignal: signal },
    );
  }
}

/** The key holds cluster ids and role ARNs: hashed, items are uniform and say nothing. */
function itemKey(key: string): string {
  return sha256Hex(key);
}
