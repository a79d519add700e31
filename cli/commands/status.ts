/**
 * `ecr-anywhere status`: each registered cluster seen through its own record's kubeconfig, as the
 * refresher sees it, but over the operator's network. Exit 1 when any cluster has a problem,
 * including a record whose server the refresher (Lambda) cannot use.
 */
import { Command } from "@commander-js/extra-typings";
import pLimit from "p-limit";
import { recordTables } from "../../functions/core/contract.ts";
import { checkKubeconfig } from "../../functions/core/kubeconfig.ts";
import { sanitize } from "../../functions/core/sanitize.ts";
import { parseClusterId, parseSeconds } from "../core/inputs.ts";
import { type ClusterStatus, summarizeCluster, unreachableCluster } from "../core/status.ts";
import type { Factory, Records } from "../factory.ts";
import { checked } from "../flags.ts";
import { formatDuration, Problem, table } from "../ui.ts";

export interface StatusOptions {
  readonly clusterIds: readonly string[];
  readonly refreshBeforeSeconds: number;
  readonly timeoutSeconds: number;
}

export function newStatusCommand(factory: () => Factory) {
  return new Command("status")
    .description(
      "each registered cluster through its record's kubeconfig: reachable, namespaces, managed and stale Secrets; exit 1 on any problem",
    )
    .argument(
      "[cluster-id...]",
      "clusters to show (default: every record)",
      (value: string, previous: string[] = []) => [...previous, checked(parseClusterId)(value)],
    )
    .option(
      "--refresh-before <seconds>",
      "the refresher's refreshBefore (the stack's refreshBeforeHours)",
      checked(parseSeconds),
      21_600,
    )
    .option("--timeout <seconds>", "per cluster", checked(parseSeconds), 20)
    .action(async (clusterIds, flags) => {
      const options: StatusOptions = {
        clusterIds: clusterIds ?? [],
        refreshBeforeSeconds: flags.refreshBefore,
        timeoutSeconds: flags.timeout,
      };
      await runStatus(options, factory());
    });
}

export async function runStatus(options: StatusOptions, factory: Factory): Promise<void> {
  const store = factory.recordStore();
  try {
    const ids = options.clusterIds.length > 0 ? options.clusterIds : await store.clusterIds();
    if (ids.length === 0)
      throw new Problem(`no cluster records in ${recordTables(factory.records).refresher}`);
    const limit = pLimit(8);
    const clusters = await Promise.all(
      ids.map((clusterId) => limit(() => clusterStatus(clusterId, store, options, factory))),
    );
    const healthy = clusters.every((cluster) => cluster.problems.length === 0);
    factory.printer.result({ ok: healthy, clusters }, () => `${statusTable(clusters)}\n`);
    if (!healthy) process.exitCode = 1;
  } finally {
    store.close();
  }
}

async function clusterStatus(
  clusterId: string,
  store: Records,
  options: StatusOptions,
  factory: Factory,
): Promise<ClusterStatus> {
  // The refresher's part: its kubeconfig is how status reaches the cluster, as the refresher does.
  const stored = await store.readRefresherPart(clusterId).catch((error: Error) => error);
  if (stored instanceof Error) return unreachableCluster(clusterId, stored.message);
  if (!stored || stored.deleted) return unreachableCluster(clusterId, "no cluster record");
  if (!stored.record) return unreachableCluster(clusterId, `invalid record: ${stored.invalid}`);
  // The connection from here is the operator's route, so Lambda's address rule does not gate it
  // (the allow-list and TLS still do); whether Lambda can use the address is reported as a finding.
  const check = checkKubeconfig(stored.record.kubeconfig, { allowLocalServers: true });
  if (!check.ok) return unreachableCluster(clusterId, `record kubeconfig: ${check.error}`);
  const lambdaView = checkKubeconfig(stored.record.kubeconfig, {
    allowLocalServers: factory.localTestBed,
  });
  const findings = lambdaView.ok ? [] : [`refresher cannot use the record: ${lambdaView.error}`];
  try {
    const { names } = factory;
    const api = factory.recordCluster(
      stored.record.kubeconfig,
      AbortSignal.timeout(options.timeoutSeconds * 1000),
    );
    const namespaces = await api.enabledNamespaces(names.namespaceLabel);
    const secrets = (
      await Promise.all(
        namespaces.map((namespace) => api.managedSecrets(namespace, names.managedLabel)),
      )
    ).flat();
    const summary = summarizeCluster(
      clusterId,
      namespaces,
      secrets,
      names,
      Date.now(),
      options.refreshBeforeSeconds * 1000,
    );
    return { ...summary, problems: [...findings, ...summary.problems] };
  } catch (error) {
    const unreachable = unreachableCluster(clusterId, (error as Error).message);
    return { ...unreachable, problems: [...findings, ...unreachable.problems] };
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
    // Names, times and messages come from the clusters: printable text only on a terminal.
    clusters.map((cluster) =>
      [
        cluster.clusterId,
        cluster.reachable ? "yes" : "no",
        cluster.reachable ? cluster.namespaces.join(",") || "-" : "-",
        cluster.reachable ? String(cluster.managedSecrets) : "-",
        cluster.reachable ? String(cluster.staleSecrets) : "-",
        cluster.leastRemainingMs === undefined ? "-" : formatDuration(cluster.leastRemainingMs),
        cluster.newestUpdatedAt ?? "-",
        cluster.problems.join("; ") || "ok",
      ].map((cell) => sanitize(cell, 1024)),
    ),
  );
}
