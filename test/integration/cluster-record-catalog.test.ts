/** Listing cluster records through the real AWS SDK against moto: pagination, batching, bad records. */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import {
  listClusterRecords,
  readClusterRecord,
} from "../../functions/adapters/cluster-record-catalog.ts";
import {
  createRefresher,
  refresherDependenciesFromEnv,
} from "../../functions/refresher/refresher.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { freePort } from "../../testbed/ports.ts";
import { newWebhookToken } from "../support/admission.ts";
import { captureOutput } from "../support/output.ts";

const motoUrl = inject("motoUrl");
const PREFIX = "catalog-test/clusters/";
let client: SecretsManagerClient;
let unreachable: string;

function record(clusterId: string) {
  return {
    version: 1,
    clusterId,
    kubeconfig: unreachable,
    webhookTokenSha256: [newWebhookToken().sha256],
    registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
  };
}

beforeAll(async () => {
  Object.assign(process.env, localAwsEnv({ secretsManager: motoUrl, sts: motoUrl, ecr: motoUrl }));
  client = new SecretsManagerClient({});
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
  // 45 records: three BatchGetSecretValue calls of up to 20.
  for (let i = 0; i < 45; i++)
    await putClusterRecord(motoUrl, record(`cluster-${i}`), { name: `${PREFIX}cluster-${i}` });
  await putClusterRecord(motoUrl, { version: 2, clusterId: "future" }, { name: `${PREFIX}future` });
  await putClusterRecord(motoUrl, { ...record("elsewhere") }, { name: `${PREFIX}misfiled` });
  await putClusterRecord(motoUrl, record("outside"), { name: "catalog-test/other/outside" });
});

describe("listClusterRecords", () => {
  it("reads every record under the prefix in batches and reports bad ones by name", async () => {
    const listing = await listClusterRecords(client, PREFIX);
    expect(listing.valid.map((stored) => stored.record.clusterId).sort()).toEqual(
      Array.from({ length: 45 }, (_, i) => `cluster-${i}`).sort(),
    );
    expect(
      listing.valid.every((stored) => stored.secretArn.startsWith("arn:aws:secretsmanager:")),
    ).toBe(true);
    expect(listing.invalid).toEqual(
      expect.arrayContaining([
        {
          secretName: `${PREFIX}future`,
          error: "unsupported cluster record version 2; this release reads version 1",
        },
        {
          secretName: `${PREFIX}misfiled`,
          error: expect.stringContaining("does not match its name"),
        },
      ]),
    );
    expect(listing.invalid).toHaveLength(2);
  });

  it("reads one record by cluster id, and names the secret when it is unusable", async () => {
    expect((await readClusterRecord(client, PREFIX, "cluster-3")).record.clusterId).toBe(
      "cluster-3",
    );
    await expect(readClusterRecord(client, PREFIX, "future")).rejects.toThrow(
      `${PREFIX}future: unsupported cluster record version 2`,
    );
  });
});

describe("a refresher run over many clusters", () => {
  it("visits every valid cluster despite bad records and unreachable clusters, then fails naming them all", async () => {
    const deps = refresherDependenciesFromEnv(
      {
        ECR_ANYWHERE_CLUSTER_RECORD_PREFIX: PREFIX,
        ECR_ANYWHERE_CLUSTER_CONCURRENCY: "8",
        ECR_ANYWHERE_CLUSTER_DEADLINE_SECONDS: "10",
      },
      { telemetry: createTelemetry("ecr-anywhere-refresher") },
    );
    const output = captureOutput();
    let failure: Error | undefined;
    try {
      await createRefresher(deps)().catch((error: Error) => {
        failure = error;
      });
    } finally {
      output.restore();
    }
    expect(failure?.message).toMatch(/^refresh failed for 47 cluster\(s\): /);
    expect(failure?.message).toContain(`${PREFIX}future`);
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
