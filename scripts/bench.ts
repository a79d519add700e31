/**
 * Measures the webhook artifact: bundle size, cold start (a new Node process importing the bundle
 * and answering its first admission) and warm latency, against local stand-ins served over HTTPS
 * as AWS endpoints are (moto_server for the webhook's DynamoDB record table, the ECR stand-in for
 * ECR). Then the
 * refresher on the real kube-apiserver of the test bed (scripts/bench-refresher.ts).
 *
 *   npm run bench   (BENCH_COLD_RUNS, BENCH_WARM_ADMISSIONS, BENCH_REFRESHER_SIZES change the counts)
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { toItem } from "../functions/adapters/record-items.ts";
import { CLUSTER_RECORD_LAYOUT, splitClusterRecord } from "../functions/core/cluster-record.ts";
import { loopbackServerTls } from "../functions/local/tls.ts";
import {
  admissionReview,
  clusterRecord,
  newWebhookToken,
  webhookEvent,
} from "../test/support/admission.ts";
import { startRecordTableStandIn } from "../test/support/record-table-stand-in.ts";
import { localAwsEnv, putClusterRecord, recordTablesEnv } from "../testbed/aws-env.ts";
import { startEcrStandIn } from "../testbed/ecr-stand-in.ts";
import { startMoto } from "../testbed/moto.ts";
import { benchRefresher } from "./bench-refresher.ts";
import { buildLambdas } from "./build.ts";

const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 9);
const WARM_ADMISSIONS = Number(process.env.BENCH_WARM_ADMISSIONS ?? 5000);
const WARM_UP = 200;

const workDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-bench-"));
const { ca, server: tls } = await loopbackServerTls("ecr-anywhere-bench");
const moto = await startMoto({ tls });
const ecr = await startEcrStandIn({ tls });
try {
  await buildLambdas(join(workDir, "dist"));
  const bundle = join(workDir, "dist/webhook/index.mjs");
  const bytes = await readFile(bundle);
  const env = {
    ...localAwsEnv({ records: moto.url, sts: moto.url, ecr: ecr.url }),
    ...recordTablesEnv("bench"),
    NODE_EXTRA_CA_CERTS: ca.certFile,
  };
  const cluster = newWebhookToken();
  const record = clusterRecord("bench", cluster.sha256, [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  ]);
  await putClusterRecord(moto.url, record, { caPem: ca.cert, records: "bench" });
  // The webhook's item, as its table holds it, for the in-memory stand-in below.
  const webhookItem = toItem({
    layout: CLUSTER_RECORD_LAYOUT,
    ...splitClusterRecord(record).webhook,
  });
  const event = () =>
    webhookEvent({ clusterId: "bench", token: cluster.token, body: admissionReview() });

  // Cold: each run is a new process, so nothing is cached: records, tokens, SDK clients, sockets.
  const coldRuns = async (runEnv: Record<string, string>) => {
    const runs: { importMs: number; firstMs: number; processMs: number }[] = [];
    for (let run = 0; run < COLD_RUNS; run++) {
      const report = await invoke(bundle, runEnv, [event()]);
      const firstMs = report.invocations[0]?.ms ?? Number.NaN;
      runs.push({ importMs: report.importMs, firstMs, processMs: report.sinceProcessStartMs });
    }
    return runs;
  };
  const cold = await coldRuns(env);
  // The same against a Node stand-in for GetItem: what is left is the webhook's own cost.
  const fastTable = await startRecordTableStandIn({ "bench-webhook": { bench: webhookItem } }, tls);
  const coldFast = await coldRuns({
    ...env,
    AWS_ENDPOINT_URL_DYNAMODB: fastTable.url,
  }).finally(() => fastTable.stop());

  // Warm: one process answering admission after admission, as a busy Lambda instance does.
  const warmReport = await invoke(
    bundle,
    env,
    Array.from({ length: WARM_ADMISSIONS + WARM_UP }, event),
  );
  const warm = warmReport.invocations.slice(WARM_UP).map((invocation) => invocation.ms);

  const median = (values: number[]) => percentile(values, 50);
  const ms = (value: number, digits = 1) => `${value.toFixed(digits)} ms`;
  console.log(
    `node ${process.version}; ${COLD_RUNS} cold runs; ${WARM_ADMISSIONS} warm admissions; 2 registries in 2 regions; HTTPS stand-ins on loopback`,
  );
  console.log(
    `webhook bundle:                         ${bytes.length} bytes (${gzipSync(bytes).length} gzipped)`,
  );
  console.log(
    `cold import (median):                   ${ms(median(cold.map((run) => run.importMs)))}`,
  );
  console.log(
    `cold first admission (median):          ${ms(median(cold.map((run) => run.firstMs)))}`,
  );
  console.log(
    `cold import + first admission (median): ${ms(median(cold.map((run) => run.importMs + run.firstMs)))}`,
  );
  console.log(
    `process start to answer (median):       ${ms(median(cold.map((run) => run.processMs)))}`,
  );
  console.log(
    `same, the record table from a Node stand-in instead of moto: import + first admission ${ms(median(coldFast.map((run) => run.importMs + run.firstMs)))} (first admission ${ms(median(coldFast.map((run) => run.firstMs)))})`,
  );
  console.log(
    `warm admission p50 / p99:               ${ms(percentile(warm, 50), 3)} / ${ms(percentile(warm, 99), 3)}`,
  );
  console.log(
    `ECR calls: ${ecr.calls.length} (each new process fetches once per region, then serves from cache)`,
  );
} finally {
  await ecr.stop();
  await moto.stop();
  await rm(workDir, { recursive: true, force: true });
  await rm(ca.dir, { recursive: true, force: true });
}

console.log("refresher on the real kube-apiserver (10% stale, inline, one cluster):");
for (const line of await benchRefresher()) console.log(`  ${line}`);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
  );
}

interface InvokeReport {
  importMs: number;
  sinceProcessStartMs: number;
  invocations: { ms: number }[];
}

function invoke(
  bundle: string,
  env: Record<string, string>,
  events: unknown[],
): Promise<InvokeReport> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [join(import.meta.dirname, "invoke-bundle.ts"), bundle],
      {
        env: { PATH: process.env.PATH ?? "", ...env, INVOKE_QUIET: "1" },
        timeout: 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${error.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}"));
      },
    );
    child.stdin?.end(JSON.stringify(events));
  });
}
