/**
 * ECR tokens shared by every execution environment of the webhook, in a DynamoDB table encrypted
 * with the stack's key and readable only by the webhook: a cold environment finds the token another
 * one minted instead of calling ECR (and STS) itself. Items are keyed by a hash of the same
 * (credentials, session policy, region) key as the in-memory cache, so a cluster can only ever
 * find a token minted with its own credentials. A short lease lets one environment mint while the
 * others wait for its result.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { sha256Hex } from "../core/auth.ts";
import { ECR } from "../core/ecr-kind.ts";
import { ECR_PUBLIC } from "../core/ecr-public-kind.ts";
import type { SharedToken, SharedTokenStore } from "../core/tokens.ts";

/**
 * Items name their token's kind in `kind`. Items written before kinds had names carry only the
 * `ecrPublic` flag; the flag is still written, for environments of that version reading new items.
 */
function kindOfItem(item: Record<string, AttributeValue> | undefined): string {
  return item?.kind?.S ?? (item?.ecrPublic?.BOOL === true ? ECR_PUBLIC.id : ECR.id);
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
        kind: kindOfItem(Item),
        region,
        fips: Item?.fips?.BOOL === true,
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
          kind: { S: token.kind },
          region: { S: token.region },
          fips: { BOOL: token.fips },
          ecrPublic: { BOOL: token.kind === ECR_PUBLIC.id },
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
