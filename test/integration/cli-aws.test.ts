/**
 * The CLI's AWS adapter through the real SDK against moto: the stack's outputs (CloudFormation), the
 * record store (two DynamoDB tables) and its key (KMS), and what each failure says.
 */
import { CloudFormationClient, CreateStackCommand } from "@aws-sdk/client-cloudformation";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateKeyCommand, DisableKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsProblem, RecordStore, readStackOutputs } from "../../cli/adapters/aws.ts";
import { buildClusterRecord } from "../../cli/core/onboard-plan.ts";
import {
  ensureRecordTables,
  localAwsEnv,
  putClusterRecord,
  readClusterRecordItems,
} from "../../testbed/aws-env.ts";
import { freePort } from "../../testbed/ports.ts";

const motoUrl = inject("motoUrl");
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const RECORDS = "cli-aws-test";
const saved = { ...process.env };
let keyArn: string;

const client = <T>(Client: new (config: object) => T): T =>
  new Client({
    endpoint: motoUrl,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIAWEBHOOKTESTKEY01", secretAccessKey: "x" },
  });

beforeAll(async () => {
  Object.assign(
    process.env,
    localAwsEnv({
      records: motoUrl,
      sts: motoUrl,
      ecr: motoUrl,
      kms: motoUrl,
      cloudFormation: motoUrl,
    }),
  );
  keyArn = (await client(KMSClient).send(new CreateKeyCommand({}))).KeyMetadata?.Arn ?? "";
  await ensureRecordTables(client(DynamoDBClient), RECORDS);
  const outputs = {
    WebhookUrl: { Value: "https://abc123.lambda-url.us-east-1.on.aws/" },
    ClusterRecords: { Value: RECORDS },
    ClusterRecordKeyArn: { Value: keyArn },
  };
  const cloudFormation = client(CloudFormationClient);
  for (const [name, kept] of [
    ["CliAwsTest", outputs],
    ["NotOurs", { WebhookUrl: outputs.WebhookUrl }],
    ["CliAwsVpc", { ...outputs, RefresherNetwork: { Value: "vpc" } }],
    ["CliAwsNewer", { ...outputs, RefresherNetwork: { Value: "satellite" } }],
  ] as const)
    await cloudFormation.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: JSON.stringify({
          Resources: { Topic: { Type: "AWS::SNS::Topic" } },
          Outputs: kept,
        }),
      }),
    );
});

afterAll(() => {
  process.env = saved;
});

describe("stack outputs", () => {
  it("reads the webhook URL, records name and key from the stack", async () => {
    expect(await readStackOutputs("CliAwsTest")).toEqual({
      webhookUrl: "https://abc123.lambda-url.us-east-1.on.aws/",
      records: RECORDS,
      recordKeyArn: keyArn,
      // A stack from before the RefresherNetwork output ran the refresher in Lambda's network.
      refresherNetwork: "public",
    });
    expect(await readStackOutputs("CliAwsVpc")).toMatchObject({ refresherNetwork: "vpc" });
    await expect(readStackOutputs("CliAwsNewer")).rejects.toThrow(
      /stack CliAwsNewer has output RefresherNetwork "satellite", which this CLI does not know/,
    );
  });

  it("names a missing stack and a stack without the outputs", async () => {
    await expect(readStackOutputs("Nowhere")).rejects.toThrow(
      "cannot read the outputs of stack Nowhere in us-east-1: it does not exist there (deploy it with npx cdk deploy in your deploy app (docs/deploy.md); or pass --stack and --region of the stack you deployed; or give --webhook-url and --record-key-arn)",
    );
    await expect(readStackOutputs("NotOurs")).rejects.toThrow(
      /stack NotOurs in us-east-1 has no output ClusterRecords.*\(npx cdk deploy in your deploy app/,
    );
  });
});

describe("record store", () => {
  const kubeconfig =
    "apiVersion: v1\nkind: Config\nusers:\n- name: r\n  user:\n    token: secret\n";
  const record = (registries: string[], clusterId = "store-test") =>
    buildClusterRecord({ clusterId, registries, namespaces: ["apps"] }, kubeconfig, [
      "a".repeat(64),
    ]);

  it("writes only what changed, restores after offboarding, and lists live records", async () => {
    const store = new RecordStore(RECORDS);
    expect(await store.problems(keyArn)).toEqual([]);
    expect(await store.read("store-test")).toBeUndefined();
    expect(await store.write(record([EAST]), keyArn, undefined)).toBe("created");
    const stored = await store.read("store-test");
    expect(stored).toMatchObject({ record: record([EAST]), deleted: false, kmsKeyId: keyArn });
    // Two items: the webhook's holds nothing secret, the refresher's kubeconfig is sealed.
    const items = await readClusterRecordItems(motoUrl, "store-test", { records: RECORDS });
    expect(items.webhook).toEqual({
      layout: 2,
      clusterId: "store-test",
      webhookTokenSha256: ["a".repeat(64)],
      registries: [EAST],
    });
    expect(items.refresher).toMatchObject({ layout: 2, revision: 0, kubeconfig });
    expect(await store.write(record([EAST]), keyArn, stored)).toBe("unchanged");
    const west = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    expect(await store.write(record([EAST, west]), keyArn, stored)).toBe("updated");
    // Only the webhook's part changed: the refresher's item was not rewritten.
    expect(
      (await readClusterRecordItems(motoUrl, "store-test", { records: RECORDS })).refresher,
    ).toMatchObject({ revision: 0 });
    expect(await store.clusterIds()).toEqual(["store-test"]);
    expect(await store.scheduleDeletion("store-test", 7)).toBe("scheduled");
    expect(await store.clusterIds()).toEqual([]);
    const marked = await readClusterRecordItems(motoUrl, "store-test", { records: RECORDS });
    for (const item of [marked.webhook, marked.refresher]) {
      expect(item?.expiresAt).toBe(Math.floor(Number(item?.deletedAt) / 1000) + 7 * 86_400);
    }
    const deleted = await store.read("store-test");
    expect(deleted).toMatchObject({ deleted: true, record: undefined });
    expect(await store.readWebhookPart("store-test")).toEqual({ record: undefined, deleted: true });
    expect(await store.write(record([EAST]), keyArn, deleted)).toBe("restored");
    expect((await store.read("store-test"))?.record?.registries).toEqual([EAST]);
    expect(
      (await readClusterRecordItems(motoUrl, "store-test", { records: RECORDS })).webhook,
    ).not.toHaveProperty("deletedAt");
    expect(await store.scheduleDeletion("never-there", 7)).toBe("absent");
    store.close();
  });

  it("reads an invalid stored record as invalid, with the reason, and replaces it on write", async () => {
    await putClusterRecord(motoUrl, { layout: 3, clusterId: "broken" }, { records: RECORDS });
    const store = new RecordStore(RECORDS);
    const broken = await store.read("broken");
    expect(broken).toMatchObject({
      record: undefined,
      deleted: false,
      invalid: expect.stringMatching(/unsupported cluster record layout 3/),
    });
    const fixed = record([EAST], "broken");
    expect(await store.write(fixed, keyArn, broken)).toBe("updated");
    expect((await store.read("broken"))?.record).toEqual(fixed);
    store.close();
  });

  it("never overwrites a change made since it read: the refresher's write-back, or a rotation", async () => {
    const store = new RecordStore(RECORDS);
    await store.write(record([EAST], "raced"), keyArn, undefined);
    const read = await store.read("raced");
    // The refresher wrote its state meanwhile (its item's revision moved on).
    await putClusterRecord(
      motoUrl,
      { ...record([EAST], "raced"), refresher: { openFailures: ["u-1"] } },
      { records: RECORDS, keyArn },
    );
    const west = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    await expect(
      store.write({ ...record([EAST, west], "raced"), kubeconfig: `${kubeconfig}#` }, keyArn, read),
    ).rejects.toThrow(/changed while this command ran .* run the command again/);
    // A rotation is conditioned on the hashes it read.
    await expect(
      store.replaceTokenHashes("raced", ["c".repeat(64)], ["d".repeat(64)]),
    ).rejects.toThrow(/changed while this command ran/);
    await store.replaceTokenHashes("raced", ["a".repeat(64)], ["a".repeat(64), "b".repeat(64)]);
    expect((await store.readWebhookPart("raced"))?.record?.webhookTokenSha256).toEqual([
      "a".repeat(64),
      "b".repeat(64),
    ]);
    expect((await store.readRefresherPart("raced"))?.record?.refresher).toEqual({
      openFailures: ["u-1"],
    });
    store.close();
  });

  it("names a disabled key, a missing table and an unreachable store", async () => {
    const disabled =
      (await client(KMSClient).send(new CreateKeyCommand({}))).KeyMetadata?.Arn ?? "";
    // moto's DisableKey takes the key id only (an ARN gets an HTML 404).
    await client(KMSClient).send(new DisableKeyCommand({ KeyId: disabled.split("/").at(-1) }));
    const store = new RecordStore(RECORDS);
    expect(await store.problems(disabled)).toEqual([
      expect.stringMatching(/^KMS key .* is Disabled$/),
    ]);
    const elsewhere = new RecordStore("no-such-records");
    expect(await elsewhere.problems(undefined)).toEqual([
      expect.stringMatching(
        /^DynamoDB table no-such-records-webhook \(cluster records\) in us-east-1: ResourceNotFoundException/,
      ),
      expect.stringMatching(/^DynamoDB table no-such-records-refresher/),
    ]);
    // The region it looked in is named: --region's, else AWS_REGION's.
    await expect(
      new RecordStore("no-such-records", { region: "eu-west-3" }).clusterIds(),
    ).rejects.toThrow(
      /^list cluster records in no-such-records-refresher \(eu-west-3\): ResourceNotFoundException/,
    );
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${await freePort()}`;
    process.env.AWS_MAX_ATTEMPTS = "1";
    const down = new RecordStore(RECORDS);
    expect((await down.problems(undefined))[0]).toMatch(
      /^DynamoDB table cli-aws-test-webhook \(cluster records\) in us-east-1: .*ECONNREFUSED/,
    );
    await expect(down.read("x")).rejects.toThrow(AwsProblem);
    process.env.AWS_ENDPOINT_URL_DYNAMODB = motoUrl;
    process.env.AWS_MAX_ATTEMPTS = "3";
    store.close();
    elsewhere.close();
    down.close();
  });
});
