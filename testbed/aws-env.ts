/**
 * Points the AWS SDK at local stand-ins through its standard endpoint variables, and is the one
 * writer (and reader) of cluster records, layout 2, for tests, benchmarks and the demo: the two
 * DynamoDB items of docs/contract.md, the kubeconfig sealed with a KMS key in moto, through the
 * same adapters the functions use.
 */

import { Agent } from "node:https";
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  KMSClient,
} from "@aws-sdk/client-kms";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { KubeconfigSeal } from "../functions/adapters/kubeconfig-seal.ts";
import { fromItem, toItem } from "../functions/adapters/record-items.ts";
import { CLUSTER_RECORD_LAYOUT, type ClusterRecord } from "../functions/core/cluster-record.ts";
import { ENV } from "../functions/core/config.ts";
import { DEFAULT_RECORDS_NAME, recordTables } from "../functions/core/contract.ts";
import { KubeconfigEnvelopeSchema } from "../functions/core/envelope.ts";
import { parseWith } from "../functions/core/validation.ts";

export interface LocalEndpoints {
  /** moto: the cluster record tables (DynamoDB) and, unless `kms` says otherwise, the record key. */
  readonly records: string;
  readonly sts: string;
  readonly ecr: string;
  /** moto, for the record key and the CLI's key check. @default `records` */
  readonly kms?: string;
  readonly cloudFormation?: string;
}

const TEST_ACCESS_KEY = "AKIAWEBHOOKTESTKEY01";

export function localAwsEnv(endpoints: LocalEndpoints): Record<string, string> {
  return {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: "webhook-test-secret-access-key",
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.records,
    AWS_ENDPOINT_URL_KMS: endpoints.kms ?? endpoints.records,
    AWS_ENDPOINT_URL_STS: endpoints.sts,
    AWS_ENDPOINT_URL_ECR: endpoints.ecr,
    AWS_ENDPOINT_URL_ECR_PUBLIC: endpoints.ecr,
    // The test bed's API servers listen on 127.0.0.1, which a real refresher refuses.
    ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "true",
    ...(endpoints.cloudFormation
      ? { AWS_ENDPOINT_URL_CLOUDFORMATION: endpoints.cloudFormation }
      : {}),
    AWS_MAX_ATTEMPTS: "3",
    POWERTOOLS_METRICS_DISABLED: "false",
  };
}

/** The functions' environment for the record tables of one records name. */
export function recordTablesEnv(recordsName: string): Record<string, string> {
  const tables = recordTables(recordsName);
  return {
    [ENV.webhookRecordTable]: tables.webhook,
    [ENV.refresherRecordTable]: tables.refresher,
  };
}

export interface RecordStoreOptions {
  /** The records name: tables `<records>-webhook` and `<records>-refresher`. @default ecr-anywhere-clusters */
  readonly records?: string;
  /** The key to seal the kubeconfig with. @default a test key made once per endpoint (`testRecordKey`) */
  readonly keyArn?: string;
  /** For an HTTPS endpoint with a test CA. */
  readonly caPem?: string;
  readonly region?: string;
}

/** The fields of the whole record that belong to the refresher's item; the rest is the webhook's. */
const REFRESHER_FIELDS = new Set(["kubeconfig", "ensure", "refresher"]);
/** Both items carry these: the layout, and an offboarding's mark and TTL. */
const BOTH_ITEMS_FIELDS = new Set(["layout", "deletedAt", "expiresAt"]);

/**
 * Writes (creates or replaces) a cluster record as its two items: the refresher's first, then the
 * webhook's, as onboard does. The tables are created when missing. `record` may be anything
 * object-shaped, so tests can store invalid records too: a field that is not the refresher's goes
 * to the webhook item as it is, and `layout` (default 2), `deletedAt` and `expiresAt` go to both.
 * A string kubeconfig is sealed (anything else is stored as given); the refresher item's revision
 * is one past the stored one.
 */
export async function putClusterRecord(
  endpoint: string,
  record: ClusterRecord | Record<string, unknown>,
  options: RecordStoreOptions = {},
): Promise<void> {
  const { dynamodb, kms } = clients(endpoint, options);
  try {
    const tables = await ensureRecordTables(dynamodb, options.records ?? DEFAULT_RECORDS_NAME);
    const clusterId = String(record.clusterId);
    const webhook: Record<string, unknown> = { layout: CLUSTER_RECORD_LAYOUT };
    const refresher: Record<string, unknown> = { layout: CLUSTER_RECORD_LAYOUT, clusterId };
    for (const [name, value] of Object.entries(record)) {
      if (BOTH_ITEMS_FIELDS.has(name)) webhook[name] = refresher[name] = value;
      else (REFRESHER_FIELDS.has(name) ? refresher : webhook)[name] = value;
    }
    if (typeof refresher.kubeconfig === "string") {
      const keyArn = options.keyArn ?? (await testRecordKey(endpoint, options));
      refresher.kubeconfig = await new KubeconfigSeal(kms, keyArn).seal(
        clusterId,
        refresher.kubeconfig,
      );
    }
    const { Item } = await dynamodb.send(
      new GetItemCommand({
        TableName: tables.refresher,
        Key: { clusterId: { S: clusterId } },
        ConsistentRead: true,
      }),
    );
    refresher.revision = Number(Item?.revision?.N ?? -1) + 1;
    await dynamodb.send(
      new PutItemCommand({ TableName: tables.refresher, Item: toItem(refresher) }),
    );
    await dynamodb.send(new PutItemCommand({ TableName: tables.webhook, Item: toItem(webhook) }));
  } finally {
    dynamodb.destroy();
    kms.destroy();
  }
}

/** A cluster's two items as stored, the refresher's kubeconfig opened (undefined: no item). */
export interface StoredItems {
  readonly webhook: Record<string, unknown> | undefined;
  readonly refresher: Record<string, unknown> | undefined;
}

/** Reads a cluster record's two items as they are stored (tests assert on them). */
export async function readClusterRecordItems(
  endpoint: string,
  clusterId: string,
  options: RecordStoreOptions = {},
): Promise<StoredItems> {
  const { dynamodb, kms } = clients(endpoint, options);
  try {
    const tables = recordTables(options.records ?? DEFAULT_RECORDS_NAME);
    const read = async (table: string) => {
      const { Item } = await dynamodb.send(
        new GetItemCommand({
          TableName: table,
          Key: { clusterId: { S: clusterId } },
          ConsistentRead: true,
        }),
      );
      return Item === undefined ? undefined : fromItem(Item);
    };
    const refresher = await read(tables.refresher);
    const sealed = parseWith(KubeconfigEnvelopeSchema, refresher?.kubeconfig);
    if (refresher && sealed.ok)
      refresher.kubeconfig = (
        await new KubeconfigSeal(kms, undefined).open(clusterId, sealed.value)
      ).kubeconfig;
    return { webhook: await read(tables.webhook), refresher };
  } finally {
    dynamodb.destroy();
    kms.destroy();
  }
}

/** Creates the two record tables of a records name when they do not exist. */
export async function ensureRecordTables(
  dynamodb: DynamoDBClient,
  recordsName: string,
): Promise<{ readonly webhook: string; readonly refresher: string }> {
  const tables = recordTables(recordsName);
  for (const table of [tables.webhook, tables.refresher]) {
    try {
      await dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [{ AttributeName: "clusterId", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "clusterId", AttributeType: "S" }],
        }),
      );
    } catch (error) {
      // Made already, by this run or another test file sharing moto.
      if ((error as Error).name !== "ResourceInUseException") throw error;
    }
  }
  return tables;
}

/** Creates a shared token table as the stack defines it (partition key `pk`, on demand). */
/** What the stack makes on deploy: the record tables of a records name, on a test bed's endpoint. */
export async function createRecordTables(
  endpoint: string,
  options: RecordStoreOptions = {},
): Promise<void> {
  const { dynamodb, kms } = clients(endpoint, options);
  kms.destroy();
  try {
    await ensureRecordTables(dynamodb, options.records ?? DEFAULT_RECORDS_NAME);
  } finally {
    dynamodb.destroy();
  }
}

export async function createTokenTable(dynamodb: DynamoDBClient, table: string): Promise<void> {
  await dynamodb.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
}

const TEST_KEY_ALIAS = "alias/ecr-anywhere-test-records";
const testKeys = new Map<string, Promise<string>>();

/** The record key of a test bed: one KMS key per endpoint, found by its alias or made once. */
export function testRecordKey(endpoint: string, options: RecordStoreOptions = {}): Promise<string> {
  let key = testKeys.get(endpoint);
  if (key === undefined) {
    key = findOrCreateTestKey(endpoint, options);
    testKeys.set(endpoint, key);
    key.catch(() => testKeys.delete(endpoint));
  }
  return key;
}

async function findOrCreateTestKey(endpoint: string, options: RecordStoreOptions): Promise<string> {
  const { dynamodb, kms } = clients(endpoint, options);
  dynamodb.destroy();
  try {
    const found = await kms
      .send(new DescribeKeyCommand({ KeyId: TEST_KEY_ALIAS }))
      .catch(() => undefined);
    if (found?.KeyMetadata?.Arn) return found.KeyMetadata.Arn;
    const created = await kms.send(
      new CreateKeyCommand({ Description: "ecr-anywhere test bed record key" }),
    );
    const arn = created.KeyMetadata?.Arn ?? "";
    await kms
      .send(new CreateAliasCommand({ AliasName: TEST_KEY_ALIAS, TargetKeyId: arn }))
      .catch(() => undefined); // another file made it meanwhile: its key serves as well as this one
    return arn;
  } finally {
    kms.destroy();
  }
}

function clients(endpoint: string, options: RecordStoreOptions) {
  const config = {
    endpoint,
    region: options.region ?? "us-east-1",
    credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: "x" },
    ...(options.caPem
      ? { requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: options.caPem }) }) }
      : {}),
  };
  return { dynamodb: new DynamoDBClient(config), kms: new KMSClient(config) };
}
