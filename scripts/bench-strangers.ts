/**
 * A local flood of unknown cluster ids (loopback only, 10,000 requests) against the webhook, before
 * (every id read from the record table, cached among the real records) and after (known-ids check
 * and per-source budget): DynamoDB calls on the webhook's record table (GetItem reads, keys-only
 * Scan listings), and how often the real clusters' admissions, interleaved with the flood, were
 * served from the record cache. Fails when "after" spends more than 10 reads on the flood.
 *
 *   npm run bench:strangers [-- --requests 10000]
 */
import { parseArgs } from "node:util";
import { DynamoDBClient, GetItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { STSClient } from "@aws-sdk/client-sts";
import { ClusterRecordStore } from "../functions/adapters/cluster-records.ts";
import { EcrTokenProvider } from "../functions/adapters/ecr-tokens.ts";
import { webhookConfigFromEnv } from "../functions/core/config.ts";
import { SourceBudget } from "../functions/lib/source-budget.ts";
import { createTelemetry } from "../functions/telemetry.ts";
import { createWebhook } from "../functions/webhook/webhook.ts";
import {
  admissionReview,
  clusterRecord,
  newWebhookToken,
  webhookEvent,
} from "../test/support/admission.ts";
import { localAwsEnv, putClusterRecord, recordTablesEnv } from "../testbed/aws-env.ts";
import { startEcrStandIn } from "../testbed/ecr-stand-in.ts";
import { startMoto } from "../testbed/moto.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "10000" } } });
const requests = Math.min(Number(values.requests), 50_000);
const REAL_CLUSTERS = 5;
const REAL_EVERY = 20; // one real admission per 20 stranger requests
const SOURCES = 250;
const RECORDS = "bench-strangers";
/** The target: the whole flood costs at most this many GetItem reads (real clusters' included). */
const MAX_READS = 10;

const moto = await startMoto();
const ecr = await startEcrStandIn();
try {
  Object.assign(
    process.env,
    localAwsEnv({ records: moto.url, sts: moto.url, ecr: ecr.url }),
    recordTablesEnv(RECORDS),
    { POWERTOOLS_LOG_LEVEL: "SILENT", POWERTOOLS_METRICS_DISABLED: "true" },
  );
  const real = Array.from({ length: REAL_CLUSTERS }, (_, i) => ({
    id: `real-${i}`,
    ...newWebhookToken(),
  }));
  for (const cluster of real)
    await putClusterRecord(moto.url, clusterRecord(cluster.id, cluster.sha256), {
      records: RECORDS,
    });

  const rows = [];
  for (const mode of ["before", "after"] as const) {
    const config = webhookConfigFromEnv(process.env);
    const client = new DynamoDBClient({});
    let realReads = 0;
    let scanPages = 0;
    const send = client.send.bind(client);
    client.send = ((command: unknown, options?: unknown) => {
      if (
        command instanceof GetItemCommand &&
        real.some((cluster) => command.input.Key?.clusterId?.S === cluster.id)
      )
        realReads++;
      if (command instanceof ScanCommand) scanPages++;
      return (send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
    }) as typeof client.send;
    const records = new ClusterRecordStore({
      client,
      table: config.webhookRecordTable,
      ttlMs: config.recordTtlMs,
      now: Date.now,
      checkKnownNames: mode === "after",
    });
    const webhook = createWebhook({
      config,
      now: Date.now,
      records,
      telemetry: createTelemetry("ecr-anywhere-webhook"),
      tokens: new EcrTokenProvider({ sts: new STSClient({}), now: Date.now }),
      // "before" had no per-source budget either: one that never runs out.
      ...(mode === "before"
        ? {
            sources: new SourceBudget({
              failuresPerWindow: Number.POSITIVE_INFINITY,
              windowMs: 60_000,
              maxSources: 1,
              now: Date.now,
            }),
          }
        : {}),
    });
    const body = admissionReview();
    let realAdmissions = 0;
    let refused = 0;
    const started = performance.now();
    for (let i = 0; i < requests; i++) {
      const result = await webhook(
        webhookEvent({
          clusterId: `stranger-${i}`,
          token: real[0]?.token ?? "",
          body,
          sourceIp: `198.51.100.${i % SOURCES}`,
        }),
      );
      if (result.statusCode === 403) refused++;
      if (i % REAL_EVERY === 0) {
        const cluster = real[(i / REAL_EVERY) % REAL_CLUSTERS] ?? real[0];
        if (!cluster) continue;
        const answer = await webhook(
          webhookEvent({
            clusterId: cluster.id,
            token: cluster.token,
            body,
            sourceIp: "203.0.113.1",
          }),
        );
        if (answer.statusCode !== 200)
          throw new Error(`real cluster refused: ${answer.statusCode}`);
        realAdmissions++;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    rows.push({
      mode,
      strangerRequests: requests,
      refused,
      getItem: records.calls.reads,
      listings: records.calls.lists,
      scanPages,
      realAdmissions,
      realCacheHitRate: `${(((realAdmissions - realReads) / realAdmissions) * 100).toFixed(1)} %`,
      seconds: seconds.toFixed(1),
    });
    client.destroy();
  }
  console.table(rows);
  const after = rows.find((row) => row.mode === "after");
  if (after === undefined || after.getItem > MAX_READS) {
    console.error(`target missed: ${after?.getItem} reads for the flood (at most ${MAX_READS})`);
    process.exitCode = 1;
  }
} finally {
  await ecr.stop();
  await moto.stop();
}
