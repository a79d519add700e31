/**
 * The refresher. Its scheduled run (EventBridge's event) visits every registered cluster: inline
 * mode in this invocation with bounded concurrency; fan-out mode sends one SQS message per cluster
 * to the worker (worker.ts). Either way one cluster's failure never stops the others, and the
 * invocation fails at the end if any cluster failed, so the Errors alarm fires and the metrics say
 * which. A one-cluster event (`{"clusterId": ...}`, onboard's check) refreshes that cluster here,
 * in either mode, and answers with its report: a failed cluster is data, not an error.
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KMSClient } from "@aws-sdk/client-kms";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import pLimit from "p-limit";
import {
  type ClusterRecordListing,
  type InvalidClusterRecord,
  RefresherRecordTable,
  type StoredClusterRecord,
} from "../adapters/cluster-record-catalog.ts";
import { KubeconfigSeal } from "../adapters/kubeconfig-seal.ts";
import { ClusterApi } from "../adapters/kubernetes.ts";
import { redactWebhookTokens } from "../core/auth.ts";
import { isDns1123Label } from "../core/cluster-record.ts";
import { refresherConfigFromEnv } from "../core/config.ts";
import { parseRefresherEvent } from "../core/refresher-event.ts";
import { MARK_SLOT_MS, MarkBudget } from "../lib/mark-budget.ts";
import { count, createTelemetry, MetricUnit, type Telemetry } from "../telemetry.ts";
import {
  type ClusterReport,
  failedReport,
  type RefreshClusterDependencies,
  refreshCluster,
} from "./refresh-cluster.ts";

export interface RefresherDependencies extends RefreshClusterDependencies {
  readonly telemetry: Telemetry;
  readonly listRecords: (signal: AbortSignal) => Promise<ClusterRecordListing>;
  /** Fan-out mode: cluster ids only; each worker reads and validates its own record. */
  readonly listClusterIds: (signal: AbortSignal) => Promise<string[]>;
  readonly readRecord: (clusterId: string, signal: AbortSignal) => Promise<StoredClusterRecord>;
  /** Fan-out mode: one message per cluster. */
  readonly enqueue: (clusterIds: readonly string[]) => Promise<void>;
  /**
   * The one-cluster check's own budget (`config.checkMarkConcurrency`), apart from the scheduled
   * run's `markBudget`: the stack splits the refresher's budget between them statically.
   */
  readonly checkMarkBudget: MarkBudget | undefined;
}

export interface RunSummary {
  readonly mode: "inline" | "fanout";
  readonly clusters: number;
  readonly failed: readonly string[];
  readonly reports: readonly ClusterReport[];
}

/** The answer to a one-cluster event: the cluster's report, its problems redacted. */
export interface OneClusterResult {
  readonly mode: "one-cluster";
  readonly report: ClusterReport;
}

export function createRefresherFromEnv(env: Readonly<Record<string, string | undefined>>) {
  return createRefresher(refresherDependenciesFromEnv(env));
}

export function refresherDependenciesFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<RefresherDependencies> = {},
): RefresherDependencies {
  const config = refresherConfigFromEnv(env);
  const records = new RefresherRecordTable({
    client: new DynamoDBClient({}),
    table: config.refresherRecordTable,
    seal: new KubeconfigSeal(new KMSClient({}), config.recordKeyArn),
  });
  const sqs = config.mode === "fanout" ? new SQSClient({}) : undefined;
  return {
    config,
    now: Date.now,
    telemetry: createTelemetry("ecr-anywhere-refresher", config.metricsInstance),
    clusterApi: (kubeconfig, signal) => new ClusterApi(kubeconfig, signal),
    // One environment runs one invocation at a time, so this is the invocation's budget.
    markBudget: new MarkBudget({ total: config.markConcurrency, slotMs: MARK_SLOT_MS }),
    checkMarkBudget:
      config.checkMarkConcurrency > 0
        ? new MarkBudget({ total: config.checkMarkConcurrency, slotMs: MARK_SLOT_MS })
        : undefined,
    listRecords: (signal) => records.list(signal),
    listClusterIds: (signal) => records.listIds(signal),
    readRecord: (clusterId, signal) => records.read(clusterId, signal),
    saveRecord: (stored, change, signal) => records.update(stored, change, signal),
    enqueue: async (clusterIds) => {
      if (!sqs || !config.fanoutQueueUrl)
        throw new Error("fan-out mode needs ECR_ANYWHERE_FANOUT_QUEUE_URL");
      for (let start = 0; start < clusterIds.length; start += 10) {
        const batch = clusterIds.slice(start, start + 10);
        const result = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: config.fanoutQueueUrl,
            Entries: batch.map((clusterId, index) => ({
              Id: String(index),
              MessageBody: JSON.stringify({ clusterId }),
            })),
          }),
        );
        if (result.Failed?.length) {
          throw new Error(
            `could not queue ${result.Failed.length} cluster(s): ${result.Failed.map((f) => f.Message).join("; ")}`,
          );
        }
      }
    },
    ...overrides,
  };
}

export function createRefresher(
  deps: RefresherDependencies,
): (event: unknown) => Promise<RunSummary | OneClusterResult> {
  return async (event) => {
    const request = parseRefresherEvent(event);
    if (!request.ok) {
      deps.telemetry.logger.error("refresher event refused", { error: request.error });
      throw new Error(`refresher event refused: ${request.error}`);
    }
    if (request.value.kind === "one-cluster") return refreshOne(request.value.clusterId, deps);
    return scheduledRun(deps);
  };
}

/** The scheduled run, over every cluster: inline, or fanned out. */
export async function scheduledRun(deps: RefresherDependencies): Promise<RunSummary> {
  const signal = AbortSignal.timeout(deps.config.clusterDeadlineMs);
  if (deps.config.mode === "fanout") return fanOut(deps, signal);
  return finish(deps, await refreshInline(deps, signal));
}

/**
 * One cluster, in this invocation whatever the mode, within the check's share of the budget. Its
 * failure is logged and counted as the scheduled run's are, and answered as data (`report.ok`
 * false), so the caller can show what the refresher saw; only a refused event is an error.
 */
async function refreshOne(
  clusterId: string,
  deps: RefresherDependencies,
): Promise<OneClusterResult> {
  const checkDeps = { ...deps, markBudget: deps.checkMarkBudget };
  let report: ClusterReport;
  try {
    const stored = await deps.readRecord(
      clusterId,
      AbortSignal.timeout(deps.config.clusterDeadlineMs),
    );
    report = await refreshAndReport(stored, checkDeps);
  } catch (error) {
    const problem = `cannot read the cluster record: ${error instanceof Error ? error.message : String(error)}`;
    deps.telemetry.logger.error("cluster record unreadable", { clusterId, error: problem });
    publishInvalidRecord(deps);
    report = failedReport(clusterId, [problem]);
  }
  return {
    mode: "one-cluster",
    report: { ...report, problems: report.problems.map(redactWebhookTokens) },
  };
}

/** Inline mode: every cluster in this invocation, with bounded concurrency. Never throws for a cluster. */
export async function refreshInline(
  deps: RefresherDependencies,
  signal: AbortSignal,
): Promise<RunSummary> {
  const listing = await deps.listRecords(signal);
  const invalidNames = reportInvalidRecords(deps, listing.invalid);
  const limit = pLimit(deps.config.clusterConcurrency);
  const reports = await Promise.all(
    listing.valid.map((stored) => limit(() => refreshAndReport(stored, deps))),
  );
  const failed = [
    ...invalidNames,
    ...reports.filter((report) => !report.ok).map((report) => report.clusterId),
  ];
  return { mode: "inline", clusters: listing.valid.length, failed, reports };
}

/**
 * Queues one message per cluster id. Items are not read here: the worker reads and validates its
 * own record, so a bad one fails there (and, after retries, lands in the dead-letter queue).
 */
async function fanOut(deps: RefresherDependencies, signal: AbortSignal): Promise<RunSummary> {
  const ids = await deps.listClusterIds(signal);
  const clusterIds = ids.filter(isDns1123Label);
  const invalidNames = reportInvalidRecords(
    deps,
    ids
      .filter((id) => !isDns1123Label(id))
      .map((clusterId) => ({ clusterId, error: "the key is not a cluster id (a DNS-1123 label)" })),
  );
  await deps.enqueue(clusterIds);
  deps.telemetry.logger.info("clusters queued", {
    clusters: clusterIds.length,
    invalid: invalidNames.length,
  });
  return finish(deps, {
    mode: "fanout",
    clusters: clusterIds.length,
    failed: invalidNames,
    reports: [],
  });
}

function reportInvalidRecords(
  deps: RefresherDependencies,
  invalid: readonly InvalidClusterRecord[],
): string[] {
  for (const record of invalid) {
    deps.telemetry.logger.error("invalid cluster record skipped", {
      clusterId: record.clusterId,
      error: record.error,
    });
    publishInvalidRecord(deps);
  }
  return invalid.map((record) => record.clusterId);
}

/** Refreshes one cluster inside its deadline, logs and publishes its metrics; never throws. */
export async function refreshAndReport(
  stored: StoredClusterRecord,
  deps: RefresherDependencies,
): Promise<ClusterReport> {
  const signal = AbortSignal.timeout(deps.config.clusterDeadlineMs);
  let report: ClusterReport;
  try {
    report = await refreshCluster(stored, deps, signal);
  } catch (error) {
    report = failedReport(stored.record.clusterId, [
      error instanceof Error ? error.message : String(error),
    ]);
  }
  const { logger } = deps.telemetry;
  const { problems, ...numbers } = report;
  if (report.ok) logger.info("cluster refreshed", numbers);
  else
    logger.error("cluster refresh failed", {
      ...numbers,
      // kube-apiserver's own errors can carry the webhook URL, token included.
      problems: problems.slice(0, 20).map(redactWebhookTokens),
    });
  publishClusterMetrics(deps.telemetry, report);
  return report;
}

function finish(deps: RefresherDependencies, summary: RunSummary): RunSummary {
  if (summary.failed.length > 0) {
    // Failing the invocation is what makes the Lambda Errors alarm fire.
    throw new Error(
      `refresh failed for ${summary.failed.length} cluster(s): ${summary.failed.join(", ")}; see the log lines per cluster`,
    );
  }
  deps.telemetry.logger.info("refresh complete", {
    mode: summary.mode,
    clusters: summary.clusters,
  });
  return summary;
}

/**
 * One cluster's numbers as fleet totals: metrics carry no ClusterId, so they cost the same for 10
 * clusters or 1,000 (sums add up, MinRemainingSeconds' minimum is the fleet's); which cluster it
 * was is in the "cluster refreshed" / "cluster refresh failed" log line beside them.
 */
function publishClusterMetrics({ metrics }: Telemetry, report: ClusterReport): void {
  count(metrics, "SecretsManaged", report.secretsManaged);
  count(metrics, "SecretsStale", report.secretsStale);
  count(metrics, "SecretsRefreshed", report.secretsRefreshed);
  count(metrics, "RefreshFailures", report.refreshFailures);
  count(metrics, "ClusterErrors", report.ok ? 0 : 1);
  if (report.minRemainingSeconds !== undefined)
    metrics.addMetric("MinRemainingSeconds", MetricUnit.Seconds, report.minRemainingSeconds);
  metrics.publishStoredMetrics();
}

function publishInvalidRecord(deps: RefresherDependencies): void {
  count(deps.telemetry.metrics, "ClusterErrors", 1);
  deps.telemetry.metrics.publishStoredMetrics();
}
