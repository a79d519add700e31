/**
 * The CLI's AWS adapter through the real SDK against moto: the stack's outputs (CloudFormation), the
 * record store and its key (Secrets Manager, KMS), and what each failure says.
 */
import { CloudFormationClient, CreateStackCommand } from "@aws-sdk/client-cloudformation";
import { CreateKeyCommand, DisableKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsProblem, RecordStore, readStackOutputs } from "../../cli/adapters/aws.ts";
import { buildClusterRecord } from "../../cli/core/onboard-plan.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { freePort } from "../../testbed/ports.ts";

const motoUrl = inject("motoUrl");
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const PREFIX = "cli-aws-test/clusters/";
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
  const outputs = {
    WebhookUrl: { Value: "https://abc123.lambda-url.us-east-1.on.aws/" },
    ClusterRecordPrefix: { Value: PREFIX },
    ClusterRecordKeyArn: { Value: keyArn },
  };
  const cloudFormation = client(CloudFormationClient);
  for (const [name, kept] of [
    ["CliAwsTest", outputs],
    ["NotOurs", { WebhookUrl: outputs.WebhookUrl }],
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
  it("reads the webhook URL, record prefix and key from the stack", async () => {
    expect(await readStackOutputs("CliAwsTest")).toEqual({
      webhookUrl: "https://abc123.lambda-url.us-east-1.on.aws/",
      recordPrefix: PREFIX,
      recordKeyArn: keyArn,
    });
  });

  it("names a missing stack and a stack without the outputs", async () => {
    await expect(readStackOutputs("Nowhere")).rejects.toThrow(
      /cannot read the outputs of stack Nowhere: .*pass --stack, or give --webhook-url/,
    );
    await expect(readStackOutputs("NotOurs")).rejects.toThrow(
      /stack NotOurs has no output ClusterRecordPrefix/,
    );
  });
});

describe("record store", () => {
  const record = (registries: string[]) =>
    buildClusterRecord(
      { clusterId: "store-test", registries, namespaces: ["apps"] },
      "kubeconfig",
      ["a".repeat(64)],
    );

  it("writes only what changed, restores after a scheduled deletion, and lists live records", async () => {
    const store = new RecordStore(PREFIX);
    expect(await store.problems(keyArn)).toEqual([]);
    expect(await store.read("store-test")).toBeUndefined();
    expect(await store.write(record([EAST]), keyArn, undefined)).toBe("created");
    const stored = await store.read("store-test");
    expect(stored).toMatchObject({ record: record([EAST]), deleted: false });
    expect(await store.write(record([EAST]), keyArn, stored)).toBe("unchanged");
    const west = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    expect(await store.write(record([EAST, west]), keyArn, stored)).toBe("updated");
    expect(await store.clusterIds()).toEqual(["store-test"]);
    expect(await store.scheduleDeletion("store-test", 7)).toBe("scheduled");
    expect(await store.clusterIds()).toEqual([]);
    const deleted = await store.read("store-test");
    expect(deleted).toMatchObject({ deleted: true, record: undefined });
    expect(await store.write(record([EAST]), keyArn, deleted)).toBe("restored");
    expect((await store.read("store-test"))?.record?.registries).toEqual([EAST]);
    expect(await store.scheduleDeletion("never-there", 7)).toBe("absent");
    store.close();
  });

  it("reads an invalid stored record as invalid, with the reason, and replaces it on write", async () => {
    await putClusterRecord(
      motoUrl,
      { version: 2, clusterId: "broken" },
      { name: `${PREFIX}broken` },
    );
    const store = new RecordStore(PREFIX);
    const broken = await store.read("broken");
    expect(broken).toMatchObject({
      record: undefined,
      deleted: false,
      invalid: expect.stringMatching(/unsupported cluster record version 2/),
    });
    const fixed = buildClusterRecord(
      { clusterId: "broken", registries: [EAST], namespaces: ["apps"] },
      "k",
      ["b".repeat(64)],
    );
    expect(await store.write(fixed, keyArn, broken)).toBe("updated");
    expect((await store.read("broken"))?.record).toEqual(fixed);
    store.close();
  });

  it("names a disabled key and an unreachable store", async () => {
    const disabled =
      (await client(KMSClient).send(new CreateKeyCommand({}))).KeyMetadata?.Arn ?? "";
    // moto's DisableKey takes the key id only (an ARN gets an HTML 404).
    await client(KMSClient).send(new DisableKeyCommand({ KeyId: disabled.split("/").at(-1) }));
    const store = new RecordStore(PREFIX);
    expect(await store.problems(disabled)).toEqual([
      expect.stringMatching(/^KMS key .* is Disabled$/),
    ]);
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = `http://127.0.0.1:${await freePort()}`;
    process.env.AWS_MAX_ATTEMPTS = "1";
    const down = new RecordStore(PREFIX);
    expect(await down.problems(undefined)).toEqual([
      expect.stringMatching(/^Secrets Manager \(cluster records\): .*ECONNREFUSED/),
    ]);
    await expect(down.read("x")).rejects.toThrow(AwsProblem);
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = motoUrl;
    process.env.AWS_MAX_ATTEMPTS = "3";
    store.close();
    down.close();
  });
});
