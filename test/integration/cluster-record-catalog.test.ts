/**
 * The refresher's record table through the real AWS SDK against moto (DynamoDB, KMS): listing,
 * opening sealed kubeconfigs, bad and offboarded records.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { RefresherRecordTable } from "../../functions/adapters/cluster-record-catalog.ts";
import { KubeconfigSeal } from "../../functions/adapters/kubeconfig-seal.ts";
import { scanItems } from "../../functions/adapters/record-scan.ts";
import {
  createRefresher,
  refresherDependenciesFromEnv,
} from "../../functions/refresher/refresher.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import {
  localAwsEnv,
  putClusterRecord,
  recordTablesEnv,
  testRecordKey,
} from "../../testbed/aws-env.ts";
import { SCHEDULED_EVENT } from "../../testbed/lambda-stand-in.ts";
import { freePort } from "../../testbed/ports.ts";
import { newWebhookToken } from "../support/admission.ts";
import { captureOutput } from "../support/output.ts";

const motoUrl = inject("motoUrl");
const RECORDS = "catalog-test";
let table: RefresherRecordTable;
let unreachable: string;

function record(clusterId: string) {
  return {
    clusterId,
    kubeconfig: unreachable,
    webhookTokenSha256: [newWebhookToken().sha256],
    registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
  };
}

beforeAll(async () => {
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: motoUrl }));
  table = new RefresherRecordTable({
    client: new DynamoDBClient({}),
    table: `${RECORDS}-refresher`,
    seal: new KubeconfigSeal(new KMSClient({}), undefined),
  });
  unreachable = stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "c",
        cluster: {
          server: `https://127.0.0.1:${await freePort()}`,
          "certificate-authority-data": "Y2E=",
        },
      },
    ],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
    "current-context": "c",
  });
  const where = { records: RECORDS };
  for (let i = 0; i < 45; i++) await putClusterRecord(motoUrl, record(`cluster-${i}`), where);
  await putClusterRecord(motoUrl, { layout: 3, clusterId: "future" }, where);
  // Another cluster's sealed kubeconfig copied into this one's item: KMS refuses to open it.
  const foreign = await new KubeconfigSeal(new KMSClient({}), await testRecordKey(motoUrl)).seal(
    "elsewhere",
    unreachable,
  );
  await putClusterRecord(motoUrl, { ...record("swapped"), kubeconfig: foreign }, where);
  await putClusterRecord(motoUrl, { ...record("offboarded"), deletedAt: Date.now() }, where);
  await putClusterRecord(motoUrl, record("outside"), { records: "catalog-test-other" });
});

describe("the refresher's record table", () => {
  it("lists every live record of its table, opens each kubeconfig, and reports bad ones by id", async () => {
    const listing = await table.list();
    expect(listing.valid.map((stored) => stored.record.clusterId).sort()).toEqual(
      Array.from({ length: 45 }, (_, i) => `cluster-${i}`).sort(),
    );
    const [first] = listing.valid;
    expect(first?.record.kubeconfig).toBe(unreachable);
    expect(first?.keyArn).toBe(await testRecordKey(motoUrl));
    // Only the refresher's part: the webhook's fields are in another table it never reads.
    expect(Object.keys(first?.record ?? {}).sort()).toEqual(["clusterId", "kubeconfig"]);
    expect(listing.invalid).toEqual(
      expect.arrayContaining([
        {
          clusterId: "future",
          error: "unsupported cluster record layout 3; this release reads layout 2",
        },
        {
          clusterId: "swapped",
          error: "KMS did not open the kubeconfig data key of swapped: InvalidCiphertextException",
        },
      ]),
    );
    expect(listing.invalid).toHaveLength(2);
    expect((await table.listIds()).sort()).toEqual(
      [...listing.valid.map((stored) => stored.record.clusterId), "future", "swapped"].sort(),
    );
  });

  it("reads one record by cluster id, and names the item when it is unusable or offboarded", async () => {
    expect((await table.read("cluster-3")).record.clusterId).toBe("cluster-3");
    await expect(table.read("future")).rejects.toThrow("unsupported cluster record layout 3");
    await expect(table.read("offboarded")).rejects.toThrow(
      `${RECORDS}-refresher offboarded is offboarded`,
    );
    await expect(table.read("nobody")).rejects.toThrow(`${RECORDS}-refresher has no item nobody`);
  });
});

describe("with the record key configured", () => {
  it("opens only kubeconfigs sealed under it, and seals a renewed one under it", async () => {
    const kms = new KMSClient({});
    const other = (await kms.send(new CreateKeyCommand({}))).KeyMetadata?.Arn ?? "";
    const configured = (records: string, keyArn: string) =>
      new RefresherRecordTable({
        client: new DynamoDBClient({}),
        table: `${records}-refresher`,
        seal: new KubeconfigSeal(kms, keyArn),
      });
    // cluster-3 was sealed under the test bed's key: a table told another key refuses it.
    await expect(configured(RECORDS, other).read("cluster-3")).rejects.toThrow(
      "KMS did not open the kubeconfig data key of cluster-3",
    );
    const own = configured(RECORDS, await testRecordKey(motoUrl));
    const read = await own.read("cluster-3");
    // A renewal under the configured key: the old key (the test bed's) is not used for it.
    await putClusterRecord(motoUrl, record("rekeyed"), { records: "catalog-test-rekey" });
    const rekey = configured("catalog-test-rekey", other);
    await expect(rekey.read("rekeyed")).rejects.toThrow(/did not open/);
    const fallback = new RefresherRecordTable({
      client: new DynamoDBClient({}),
      table: "catalog-test-rekey-refresher",
      seal: new KubeconfigSeal(kms, undefined),
    });
    const before = await fallback.read("rekeyed");
    const viaOther = new RefresherRecordTable({
      client: new DynamoDBClient({}),
      table: "catalog-test-rekey-refresher",
      seal: new KubeconfigSeal(kms, other),
    });
    await viaOther.update(before, { kubeconfig: { from: unreachable, to: `${unreachable}#` } });
    expect((await rekey.read("rekeyed")).keyArn).toBe(other);
    expect(read.keyArn).toBe(await testRecordKey(motoUrl));
  });
});

describe("the bounded scan", () => {
  it("pages through a table, and stops past its page bound", async () => {
    const client = new DynamoDBClient({});
    const input = {
      TableName: `${RECORDS}-refresher`,
      ProjectionExpression: "clusterId",
      Limit: 10,
    };
    const all = await scanItems(client, input);
    expect(all.length).toBeGreaterThan(40);
    await expect(scanItems(client, input, undefined, 2)).rejects.toThrow(
      `${RECORDS}-refresher has more than 2 pages of cluster records`,
    );
  });
});

describe("a refresher run over many clusters", () => {
  it("visits every valid cluster despite bad records and unreachable clusters, then fails naming them all", async () => {
    const deps = refresherDependenciesFromEnv(
      {
        ...recordTablesEnv(RECORDS),
        ECR_ANYWHERE_CLUSTER_CONCURRENCY: "8",
        ECR_ANYWHERE_CLUSTER_DEADLINE_SECONDS: "10",
      },
      { telemetry: createTelemetry("ecr-anywhere-refresher") },
    );
    const output = captureOutput();
    let failure: Error | undefined;
    try {
      await createRefresher(deps)(SCHEDULED_EVENT).catch((error: Error) => {
        failure = error;
      });
    } finally {
      output.restore();
    }
    expect(failure?.message).toMatch(/^refresh failed for 47 cluster\(s\): /);
    expect(failure?.message).toContain("future");
    expect(failure?.message).toContain("swapped");
    expect(failure?.message).not.toContain("offboarded");
    const visited = output.json().filter((line) => line.message === "cluster refresh failed");
    expect(visited).toHaveLength(45);
    expect(
      output.json().filter((line) => line.message === "invalid cluster record skipped"),
    ).toHaveLength(2);
    // Metrics are fleet totals (no ClusterId: cost does not grow with the fleet); the log lines
    // name each failed cluster.
    expect(output.metric("ClusterErrors")).toBe(47);
    expect(output.json().some((line) => line.ClusterId !== undefined)).toBe(false);
    expect(new Set(visited.map((line) => line.clusterId)).size).toBe(45);
  });
});
