/**
 * The AWS side of the CLI, with the SDK's usual credential chain and `AWS_ENDPOINT_URL_*`: the
 * stack's outputs (CloudFormation), and cluster records, layout 2 (two DynamoDB tables; the
 * refresher's kubeconfig sealed with the stack's KMS key). Record contents are never logged or put
 * in an error.
 */
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { KubeconfigSeal } from "../../functions/adapters/kubeconfig-seal.ts";
import { fromItem, toAttribute, toItem } from "../../functions/adapters/record-items.ts";
import { scanLiveClusterIds } from "../../functions/adapters/record-scan.ts";
import {
  CLUSTER_RECORD_LAYOUT,
  type ClusterRecord,
  isDeletedItem,
  joinClusterRecord,
  parseRefresherItem,
  parseWebhookItem,
  type RefresherRecord,
  splitClusterRecord,
  type WebhookRecord,
} from "../../functions/core/cluster-record.ts";
import { recordTables } from "../../functions/core/contract.ts";
import { isRefresherNetworkMode, type RefresherNetworkMode } from "../../functions/core/network.ts";
import { DEPLOY_COMMAND } from "../core/findings.ts";
import { canonicalJson } from "../core/onboard-plan.ts";

/** A problem found in AWS: the command exits 1. */
export class AwsProblem extends Error {
  override readonly name = "AwsProblem";
}

/** `--region` and `--profile`: given to every client; unset, the SDK's usual chain decides. */
export interface AwsClientConfig {
  readonly region?: string;
  readonly profile?: string;
}

export interface StackOutputs {
  readonly webhookUrl: string;
  /** The records name N of the stack's tables `<N>-webhook` and `<N>-refresher`. */
  readonly records: string;
  readonly recordKeyArn: string;
  /** Where the refresher connects from: `public` for stacks made before the output existed. */
  readonly refresherNetwork: RefresherNetworkMode;
  /** The hosts tokens may pull from; undefined for stacks made before the output existed. */
  readonly allowedRegistries: readonly string[] | undefined;
  /** The refresher function's name; undefined for stacks made before the output existed. */
  readonly refresherFunction: string | undefined;
}

function refresherNetworkOutput(
  stackName: string,
  value: string | undefined,
): RefresherNetworkMode {
  // Stacks deployed before the setting existed ran the refresher in Lambda's own network.
  if (value === undefined) return "public";
  if (!isRefresherNetworkMode(value))
    throw new AwsProblem(
      `stack ${stackName} has output RefresherNetwork ${JSON.stringify(value)}, which this CLI does not know: upgrade the CLI`,
    );
  return value;
}

/**
 * The region (and profile) a client looks in, as a message names it: `us-east-1`, `eu-west-1,
 * profile prod`. Asks the client's own region chain, so AWS_REGION and a profile's region count.
 */
export async function awsLocation(
  client: { readonly config: { region(): Promise<string> } },
  aws: AwsClientConfig,
): Promise<string> {
  const region = await client.config.region().catch(() => "no region");
  const profile = aws.profile ?? process.env.AWS_PROFILE;
  return profile ? `${region}, profile ${profile}` : region;
}

export async function readStackOutputs(
  stackName: string,
  aws: AwsClientConfig = {},
): Promise<StackOutputs> {
  const client = new CloudFormationClient(aws);
  try {
    const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    const outputs = new Map(
      (Stacks?.[0]?.Outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]),
    );
    const missing = ["WebhookUrl", "ClusterRecords", "ClusterRecordKeyArn"].filter(
      (key) => !outputs.get(key),
    );
    if (missing.length > 0)
      throw new AwsProblem(
        `stack ${stackName} in ${await awsLocation(client, aws)} has no output ${missing.join(", ")}: is it an ecr-anywhere stack, fully deployed? (${DEPLOY_COMMAND})`,
      );
    return {
      webhookUrl: outputs.get("WebhookUrl") ?? "",
      records: outputs.get("ClusterRecords") ?? "",
      recordKeyArn: outputs.get("ClusterRecordKeyArn") ?? "",
      refresherNetwork: refresherNetworkOutput(stackName, outputs.get("RefresherNetwork")),
      allowedRegistries: outputs.get("AllowedRegistries")?.split(",").filter(Boolean),
      refresherFunction: outputs.get("RefresherFunctionName") || undefined,
    };
  } catch (error) {
    if (error instanceof AwsProblem) throw error;
    const where = await awsLocation(client, aws);
    // CloudFormation says a missing stack with a ValidationError.
    const reason = /does not exist/.test((error as Error).message)
      ? "it does not exist there"
      : awsMessage(error);
    throw new AwsProblem(
      `cannot read the outputs of stack ${stackName} in ${where}: ${reason} (deploy it with ${DEPLOY_COMMAND}; or pass --stack and --region of the stack you deployed; or give --webhook-url and --record-key-arn)`,
    );
  } finally {
    client.destroy();
  }
}

/** One part of a record as read: valid, invalid (with the reason), or offboarded. */
export interface StoredPart<T> {
  readonly record: T | undefined;
  readonly invalid?: string;
  /** Marked deleted (offboarded within its recovery window). */
  readonly deleted: boolean;
}

export interface StoredRecord {
  /** The whole record, when both items are there, valid, and not marked deleted. */
  readonly record: ClusterRecord | undefined;
  readonly invalid?: string;
  /** The key that sealed the kubeconfig, as KMS reported it. */
  readonly kmsKeyId: string | undefined;
  /** Either item is marked deleted (offboarded within the recovery window). */
  readonly deleted: boolean;
  /** The refresher item's revision as read: a write is conditioned on it. Undefined: no item. */
  readonly revision?: number | undefined;
  /** The webhook item's token hashes as read (its write is conditioned on them); null: no item. */
  readonly webhookHashes?: AttributeValue | null;
}

export type WriteOutcome = "created" | "updated" | "unchanged" | "restored";

type Item = Record<string, unknown>;

/**
 * Cluster records in the tables `<records>-webhook` and `<records>-refresher`. Every write is
 * conditioned on what was read (the refresher item's revision, the webhook item's token hashes), so
 * a concurrent refresher write-back or another operator's change is never silently overwritten.
 */
export class RecordStore {
  readonly #dynamodb: DynamoDBClient;
  readonly #kms: KMSClient;
  readonly #seal: KubeconfigSeal;
  readonly #tables: { readonly webhook: string; readonly refresher: string };
  readonly #aws: AwsClientConfig;

  constructor(records: string, aws: AwsClientConfig = {}) {
    this.#aws = aws;
    this.#tables = recordTables(records);
    this.#dynamodb = new DynamoDBClient(aws);
    this.#kms = new KMSClient(aws);
    this.#seal = new KubeconfigSeal(this.#kms, undefined);
  }

  /** The region (and profile) the tables are looked for in, for messages. */
  #where(): Promise<string> {
    return awsLocation(this.#dynamodb, this.#aws);
  }

  /** Where a cluster's record is, for messages. */
  locationOf(clusterId: string): string {
    return `${clusterId} (tables ${this.#tables.webhook}, ${this.#tables.refresher})`;
  }

  /** Problems reaching the tables and the key, each one line; empty when all answer. */
  async problems(keyArn: string | undefined): Promise<string[]> {
    const problems: string[] = [];
    for (const table of [this.#tables.webhook, this.#tables.refresher]) {
      try {
        const { Table } = await this.#dynamodb.send(new DescribeTableCommand({ TableName: table }));
        if (Table?.TableStatus !== "ACTIVE")
          problems.push(`DynamoDB table ${table} is ${Table?.TableStatus ?? "not active"}`);
      } catch (error) {
        problems.push(
          `DynamoDB table ${table} (cluster records) in ${await this.#where()}: ${awsMessage(error)}`,
        );
      }
    }
    if (keyArn) {
      try {
        const { KeyMetadata } = await this.#kms.send(new DescribeKeyCommand({ KeyId: keyArn }));
        if (!KeyMetadata?.Enabled)
          problems.push(`KMS key ${keyArn} is ${KeyMetadata?.KeyState ?? "not enabled"}`);
      } catch (error) {
        problems.push(`KMS key ${keyArn}: ${awsMessage(error)}`);
      }
    }
    return problems;
  }

  /** Both parts, the kubeconfig opened (kms:Decrypt with the kubeconfig's context). */
  async read(clusterId: string): Promise<StoredRecord | undefined> {
    const [webhookItem, refresherItem] = await Promise.all([
      this.#get(this.#tables.webhook, clusterId),
      this.#get(this.#tables.refresher, clusterId),
    ]);
    if (!webhookItem && !refresherItem) return undefined;
    const revision =
      typeof refresherItem?.revision === "number" ? refresherItem.revision : undefined;
    const found = {
      revision,
      webhookHashes: webhookItem ? toAttribute(webhookItem.webhookTokenSha256 ?? null) : null,
    };
    const deleted = isDeletedItem(webhookItem) || isDeletedItem(refresherItem);
    if (deleted) return { record: undefined, kmsKeyId: undefined, deleted, ...found };
    const webhook = parseWebhookPart(webhookItem, clusterId);
    const refresher = await this.#openRefresherPart(refresherItem, clusterId);
    if (!webhook.record || !refresher.opened)
      return {
        record: undefined,
        invalid: [webhook.invalid, refresher.invalid].filter(Boolean).join("; "),
        kmsKeyId: refresher.opened?.keyArn,
        deleted,
        ...found,
      };
    return {
      record: joinClusterRecord(webhook.record, refresher.opened.record),
      kmsKeyId: refresher.opened.keyArn,
      deleted,
      ...found,
    };
  }

  /** The webhook's part alone: no KMS call (rotate-token needs nothing else). */
  async readWebhookPart(clusterId: string): Promise<StoredPart<WebhookRecord> | undefined> {
    const item = await this.#get(this.#tables.webhook, clusterId);
    if (!item) return undefined;
    if (isDeletedItem(item)) return { record: undefined, deleted: true };
    return { record: undefined, ...parseWebhookPart(item, clusterId), deleted: false };
  }

  /** The refresher's part alone, its kubeconfig opened (status needs nothing else). */
  async readRefresherPart(clusterId: string): Promise<StoredPart<RefresherRecord> | undefined> {
    const item = await this.#get(this.#tables.refresher, clusterId);
    if (!item) return undefined;
    if (isDeletedItem(item)) return { record: undefined, deleted: true };
    const { opened, invalid } = await this.#openRefresherPart(item, clusterId);
    return { record: opened?.record, ...(invalid ? { invalid } : {}), deleted: false };
  }

  /**
   * Writes what differs from what is stored, under `keyArn`: the refresher's item first, then the
   * webhook's, so the webhook never knows a cluster the refresher lacks. An offboarded record is
   * restored whole.
   */
  async write(
    record: ClusterRecord,
    keyArn: string,
    existing: StoredRecord | undefined,
  ): Promise<WriteOutcome> {
    const parts = splitClusterRecord(record);
    const stored =
      existing?.record && !existing.deleted ? splitClusterRecord(existing.record) : undefined;
    const sameRefresher =
      stored !== undefined &&
      existing?.kmsKeyId === keyArn &&
      canonicalJson(stored.refresher) === canonicalJson(parts.refresher);
    const sameWebhook =
      stored !== undefined && canonicalJson(stored.webhook) === canonicalJson(parts.webhook);
    if (sameRefresher && sameWebhook) return "unchanged";
    try {
      if (!sameRefresher) await this.#putRefresherPart(parts.refresher, keyArn, existing?.revision);
      if (!sameWebhook) await this.#putWebhookPart(parts.webhook, existing);
    } catch (error) {
      throw this.#writeProblem(record.clusterId, error);
    }
    if (!existing) return "created";
    return existing.deleted ? "restored" : "updated";
  }

  /** Replaces the token hashes only while they are still `from` (rotate-token's two steps). */
  async replaceTokenHashes(
    clusterId: string,
    from: readonly string[],
    to: readonly string[],
  ): Promise<void> {
    try {
      await this.#dynamodb.send(
        new UpdateItemCommand({
          TableName: this.#tables.webhook,
          Key: { clusterId: { S: clusterId } },
          UpdateExpression: "SET webhookTokenSha256 = :to",
          ConditionExpression: "webhookTokenSha256 = :from AND attribute_not_exists(deletedAt)",
          ExpressionAttributeValues: { ":from": toAttribute(from), ":to": toAttribute(to) },
        }),
      );
    } catch (error) {
      throw this.#writeProblem(clusterId, error);
    }
  }

  /**
   * Marks both items deleted (the webhook's first: the id is unknown at once), with DynamoDB's TTL
   * at the end of the recovery window; onboard restores them until then.
   */
  async scheduleDeletion(clusterId: string, recoveryDays: number): Promise<"scheduled" | "absent"> {
    const deletedAt = Date.now();
    const expiresAt = Math.floor(deletedAt / 1000) + recoveryDays * 86_400;
    let marked = 0;
    for (const table of [this.#tables.webhook, this.#tables.refresher]) {
      const bump = table === this.#tables.refresher ? ", revision = revision + :one" : "";
      try {
        await this.#dynamodb.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { clusterId: { S: clusterId } },
            UpdateExpression: `SET deletedAt = :deletedAt, expiresAt = :expiresAt${bump}`,
            ConditionExpression: "attribute_exists(clusterId)",
            ExpressionAttributeValues: {
              ":deletedAt": { N: String(deletedAt) },
              ":expiresAt": { N: String(expiresAt) },
              ...(bump ? { ":one": { N: "1" } } : {}),
            },
          }),
        );
        marked++;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) continue;
        throw new AwsProblem(
          `delete cluster record ${this.locationOf(clusterId)}: ${awsMessage(error)}`,
        );
      }
    }
    return marked > 0 ? "scheduled" : "absent";
  }

  /** Every cluster id with a live record (the refresher's table: what status visits). */
  async clusterIds(): Promise<string[]> {
    try {
      return (await scanLiveClusterIds(this.#dynamodb, this.#tables.refresher)).sort();
    } catch (error) {
      throw new AwsProblem(
        `list cluster records in ${this.#tables.refresher} (${await this.#where()}): ${awsMessage(error)}`,
      );
    }
  }

  close(): void {
    this.#dynamodb.destroy();
    this.#kms.destroy();
  }

  async #get(table: string, clusterId: string): Promise<Item | undefined> {
    try {
      const { Item } = await this.#dynamodb.send(
        new GetItemCommand({
          TableName: table,
          Key: { clusterId: { S: clusterId } },
          ConsistentRead: true,
        }),
      );
      return Item === undefined ? undefined : fromItem(Item);
    } catch (error) {
      throw new AwsProblem(`read cluster record ${clusterId} from ${table}: ${awsMessage(error)}`);
    }
  }

  async #openRefresherPart(
    item: Item | undefined,
    clusterId: string,
  ): Promise<{ opened?: { record: RefresherRecord; keyArn: string }; invalid?: string }> {
    if (!item)
      return { invalid: `${this.#tables.refresher} has no item (an onboard that stopped midway?)` };
    const parsed = parseRefresherItem(item, clusterId);
    if (!parsed.ok) return { invalid: `${this.#tables.refresher}: ${parsed.error}` };
    const { layout: _, kubeconfig, revision, deletedAt, expiresAt, ...part } = parsed.value;
    try {
      const opened = await this.#seal.open(clusterId, kubeconfig);
      return {
        opened: { record: { ...part, kubeconfig: opened.kubeconfig }, keyArn: opened.keyArn },
      };
    } catch (error) {
      return { invalid: `${this.#tables.refresher}: ${(error as Error).message}` };
    }
  }

  async #putRefresherPart(
    part: RefresherRecord,
    keyArn: string,
    revision: number | undefined,
  ): Promise<void> {
    const sealed = await this.#seal.seal(part.clusterId, part.kubeconfig, undefined, keyArn);
    const item = {
      layout: CLUSTER_RECORD_LAYOUT,
      ...part,
      kubeconfig: sealed,
      revision: (revision ?? -1) + 1,
    };
    await this.#dynamodb.send(
      new PutItemCommand({
        TableName: this.#tables.refresher,
        Item: toItem(item),
        ...(revision === undefined
          ? { ConditionExpression: "attribute_not_exists(clusterId)" }
          : {
              ConditionExpression: "revision = :read",
              ExpressionAttributeValues: { ":read": { N: String(revision) } },
            }),
      }),
    );
  }

  async #putWebhookPart(part: WebhookRecord, existing: StoredRecord | undefined): Promise<void> {
    const hashes = existing?.webhookHashes ?? null;
    await this.#dynamodb.send(
      new PutItemCommand({
        TableName: this.#tables.webhook,
        Item: toItem({ layout: CLUSTER_RECORD_LAYOUT, ...part }),
        // Conditioned on the hashes read: a rotation made meanwhile is not undone.
        ...(hashes === null
          ? { ConditionExpression: "attribute_not_exists(clusterId)" }
          : hashes.NULL
            ? { ConditionExpression: "attribute_not_exists(webhookTokenSha256)" }
            : {
                ConditionExpression: "webhookTokenSha256 = :read",
                ExpressionAttributeValues: { ":read": hashes },
              }),
      }),
    );
  }

  #writeProblem(clusterId: string, error: unknown): AwsProblem {
    if (error instanceof ConditionalCheckFailedException)
      return new AwsProblem(
        `cluster record ${this.locationOf(clusterId)} changed while this command ran (a refresher run, a rotation, or another operator); nothing of it was overwritten: run the command again`,
      );
    return new AwsProblem(
      `write cluster record ${this.locationOf(clusterId)}: ${awsMessage(error)}`,
    );
  }
}

function parseWebhookPart(
  item: Item | undefined,
  clusterId: string,
): { record?: WebhookRecord; invalid?: string } {
  if (!item) return { invalid: "the webhook's item is missing (an onboard that stopped midway?)" };
  const parsed = parseWebhookItem(item, clusterId);
  if (!parsed.ok) return { invalid: parsed.error };
  const { layout: _, deletedAt, expiresAt, ...record } = parsed.value;
  return { record };
}

/** The AWS error's name and message, or the network failure's code: never request data. */
export function awsMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code =
    (error as { code?: string }).code ?? (error.cause as { code?: string } | undefined)?.code;
  if (error.name === "CredentialsProviderError")
    return "no AWS credentials found (set AWS_PROFILE, or run aws configure)";
  if (error.message === "Region is missing")
    return "no AWS region: pass --region, or set AWS_REGION or a profile's region";
  return code && !error.message.includes(code)
    ? `${error.name}: ${error.message} (${code})`
    : `${error.name}: ${error.message}`;
}
