/**
 * `ecr-anywhere status`: each registered cluster seen through its own record's kubeconfig, as the
 * refresher sees it. Exit 1 when any cluster has a problem.
 */
import pLimit from "p-limit";
import { ClusterApi } from "../../functions/adapters/kubernetes.ts";
import { contractNames } from "../../functions/core/contract.ts";
import { checkKubeconfig } from "../../functions/core/kubeconfig.ts";
import { RecordStore } from "../adapters/aws.ts";
import { type ClusterStatus, summarizeCluster, unreachableCluster } from "../core/status.ts";
import { emit, formatDuration, type OutputFormat, Problem, table } from "../ui.ts";

export interface StatusOptions {
  readonly clusterIds: readonly string[];
  readonly recordPrefix: string;
  readonly labelPrefix?: string | undefined;
  readonly refreshBeforeSeconds: number;
  readonly timeoutSeconds: number;
  readonly output: OutputFormat;
}

export async function status(options: StatusOptions): Promise<void> {
  const names = contractNames(options.labelPrefix);
  const store = new RecordStore(options.recordPrefix);
  try {
    const ids = options.clusterIds.length > 0 ? options.clusterIds : await store.clusterIds();
    if (ids.length === 0) throw new Problem(`no cluster records under ${options.recordPrefix}`);
    const limit = pLimit(8);
    const clusters = await Promise.all(
      ids.map((clusterId) =>
        limit(async (): Promise<ClusterStatus> => {
          const stored = await store.read(clusterId).catch((error: Error) => error);
          if (stored instanceof Error) return unreachableCluster(clusterId, stored.message);
          if (!stored || stored.deleted) return unreachableCluster(clusterId, "no cluster record");
          if (!stored.record)
            return unreachableCluster(clusterId, `invalid record: ${stored.invalid}`);
          const check = checkKubeconfig(stored.record.kubeconfig, {
            allowLocalServers: process.env.ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS === "true",
          });
          if (!check.ok) return unreachableCluster(clusterId, `record kubeconfig: ${check.error}`);
          try {
            const api = new ClusterApi(
              stored.record.kubeconfig,
              AbortSignal.timeout(options.timeoutSeconds * 1000),
            );
            const namespaces = await api.enabledNamespaces(names.namespaceLabel);
            const secrets = (
              await Promise.all(
                namespaces.map((namespace) => api.managedSecrets(namespace, names.managedLabel)),
              )
            ).flat();
            return summarizeCluster(
              clusterId,
              namespaces,
              secrets,
              names,
              Date.now(),
              options.refreshBeforeSeconds * 1000,
            );
          } catch (error) {
            return unreachableCluster(clusterId, (error as Error).message);
          }
        }),
      ),
    );
    const healthy = clusters.every((cluster) => cluster.problems.length === 0);
    emit(options.output, { ok: healthy, clusters }, () => `${statusTable(clusters)}\n`);
    if (!healthy) process.exitCode = 1;
  } finally {
    store.close();
  }
}

export function statusTable(clusters: readonly ClusterStatus[]): string {
  return table(
    [
      "CLUSTER",
      "REACHABLE",
      "NAMESPACES",
      "MANAGED",
      "STALE",
      "LEAST LEFT",
      "NEWEST UPDATE",
      "PROBLEMS",
    ],
    clusters.map((cluster) => [
      cluster.clusterId,
      cluster.reachable ? "yes" : "no",
      cluster.reachable ? cluster.namespaces.join(",") || "-" : "-",
      cluster.reachable ? String(cluster.managedSecrets) : "-",
      cluster.reachable ? String(cluster.staleSecrets) : "-",
      cluster.leastRemainingMs === undefined ? "-" : formatDuration(cluster.leastRemainingMs),
      cluster.newestUpdatedAt ?? "-",
      cluster.problems.join("; ") || "ok",
    ]),
  );
}
