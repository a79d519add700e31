/**
 * The fan-out worker: one SQS message per cluster (`{"clusterId": "..."}`), refreshed by the same
 * per-cluster code as inline mode. A failed cluster is reported as a batch item failure, so SQS
 * retries it and finally moves it to the dead-letter queue.
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import * as v from "valibot";
import { isDns1123Label } from "../core/cluster-record.ts";
import { parseJson, parseWith } from "../core/validation.ts";
import { type RefresherDependencies, refreshAndReport } from "./refresher.ts";

const ClusterMessage = v.strictObject({
  clusterId: v.pipe(v.string(), v.check(isDns1123Label, "a cluster id")),
});

export function createWorker(
  deps: RefresherDependencies,
): (event: SQSEvent) => Promise<SQSBatchResponse> {
  return async (event) => {
    const batchItemFailures: SQSBatchResponse["batchItemFailures"] = [];
    for (const message of event.Records) {
      const json = parseJson(message.body);
      const parsed = json.ok ? parseWith(ClusterMessage, json.value) : json;
      if (!parsed.ok) {
        // Retrying cannot fix a malformed message: log it and let it go.
        deps.telemetry.logger.error("malformed fan-out message dropped", {
          messageId: message.messageId,
          error: parsed.error,
        });
        continue;
      }
      try {
        const stored = await deps.readRecord(
          parsed.value.clusterId,
          AbortSignal.timeout(deps.config.clusterDeadlineMs),
        );
        const report = await refreshAndReport(stored, deps);
        if (!report.ok) batchItemFailures.push({ itemIdentifier: message.messageId });
      } catch (error) {
        deps.telemetry.logger.error("cluster record unreadable", {
          clusterId: parsed.value.clusterId,
          error: error instanceof Error ? error.message : String(error),
        });
        batchItemFailures.push({ itemIdentifier: message.messageId });
      }
    }
    return { batchItemFailures };
  };
}
