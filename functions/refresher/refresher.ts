/**
 * The refresher's invocation: visit every registered cluster. This first version reads and
 * validates every cluster record and reports which ones are unusable; visiting clusters comes with
 * the refresher issue.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { listClusterRecords } from "../adapters/cluster-record-list.ts";
import { count, createTelemetry } from "../telemetry.ts";

export type Refresher = () => Promise<{ clusters: number; invalid: number }>;

export function createRefresherFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Refresher {
  const prefix = env.ECR_ANYWHERE_CLUSTER_RECORD_PREFIX ?? "ecr-anywhere/clusters/";
  const client = new SecretsManagerClient({});
  const { logger, metrics } = createTelemetry("ecr-anywhere-refresher");
  return async () => {
    try {
      const records = await listClusterRecords(client, prefix);
      for (const invalid of records.invalid) logger.error("invalid cluster record", { ...invalid });
      count(metrics, "ClusterErrors", records.invalid.length);
      return { clusters: records.valid.length, invalid: records.invalid.length };
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
