/**
 * The token broker's access key, kept in one item of the webhook's token table (DynamoDB,
 * encrypted with the stack's record key): the rotation function writes it, the webhook reads it.
 * No Secrets Manager secret ($0.40 a month) is needed for one value that only these two read; the
 * table already holds the tokens minted with it, and IAM grants the rotation function exactly this
 * item (dynamodb:LeadingKeys).
 */
import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { BROKER_KEY_ITEM, type BrokerKeyStore, type StoredBrokerKey } from "../core/broker-key.ts";

/** What the webhook needs: reading. (Writing, below, stays out of its bundle.) */
export class DynamoBrokerKeyReader implements Pick<BrokerKeyStore, "read"> {
  protected readonly client: DynamoDBClient;
  protected readonly table: string;

  constructor(table: string, client = new DynamoDBClient({})) {
    this.table = table;
    this.client = client;
  }

  async read(signal: AbortSignal): Promise<StoredBrokerKey | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: { S: BROKER_KEY_ITEM } },
        ConsistentRead: true,
      }),
      { abortSignal: signal },
    );
    const accessKeyId = Item?.accessKeyId?.S;
    const secretAccessKey = Item?.secretAccessKey?.S;
    const storedAtMs = Number(Item?.storedAtMs?.N);
    if (!accessKeyId || !secretAccessKey || !Number.isFinite(storedAtMs)) return undefined;
    return { accessKeyId, secretAccessKey, storedAtMs };
  }
}

/** The rotation function's: reading which key is current, and storing a new one. */
export class DynamoBrokerKeyStore extends DynamoBrokerKeyReader implements BrokerKeyStore {
  async write(key: StoredBrokerKey, signal: AbortSignal): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        // No `expiresAt`: the table's TTL must never remove the key.
        Item: {
          pk: { S: BROKER_KEY_ITEM },
          accessKeyId: { S: key.accessKeyId },
          secretAccessKey: { S: key.secretAccessKey },
          storedAtMs: { N: String(key.storedAtMs) },
        },
      }),
      { abortSignal: signal },
    );
  }
}
