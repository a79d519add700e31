/**
 * `npm run bench:fleet`: a refresh of a whole fleet under Lambda's concurrency model. N clusters
 * (protocol-level stand-ins, each calling the webhook through its own URL and token as
 * kube-apiserver does) x M managed Secrets that all went stale at once; one refresher run, inline
 * or fan-out; ordinary user writes meanwhile; some clusters with their own roleArn. The webhook is
 * the built bundle in the Lambda pool (isolated environments, reserved concurrency, Lambda's 429).
 * Prints a table and, last, one JSON line.
 *
 *   npm run bench:fleet                                   20 clusters x 10 Secrets, both modes
 *   npm run bench:fleet -- --clusters 100 --secrets 50    the scenario
 *   npm run bench:fleet -- --check                        exit 1 if a target is missed (CI)
 *   npm run bench:fleet -- --real 3                       3 of the clusters are real kube-apiservers (one etcd)
 *   npm run bench:fleet -- --before                       as it was: no mark budget, no retry, no shared tokens
 */

import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { DynamoBrokerKeyStore } from "../functions/adapters/broker-key-store.ts";
import { ClusterApi } from "../functions/adapters/kubernetes.ts";
import { sha256Hex } from "../functions/core/auth.ts";
import { contractNames } from "../functions/core/contract.ts";
import { toRfc3339 } from "../functions/core/time.ts";
import { startFunctionUrlServer } from "../functions/local/function-url-server.ts";
import { LambdaPool } from "../functions/local/lambda-pool.ts";
import { loopbackServerTls } from "../functions/local/tls.ts";
import { type ClusterReport, refreshCluster } from "../functions/refresher/refresh-cluster.ts";
import { refresherDependenciesFromEnv, refreshInline } from "../functions/refresher/refresher.ts";
import { createTelemetry } from "../functions/telemetry.ts";
import { webhookConfiguration } from "../k8s/webhook-configuration.ts";
import { startFaultProxy } from "../test/support/fault-server.ts";
import { createTokenTable, localAwsEnv, putClusterRecord } from "../testbed/aws-env.ts";
import { startClusterStandIn } from "../testbed/cluster-stand-in.ts";
import { type ControlPlane, kubeconfig, startControlPlane } from "../testbed/control-plane.ts";
import { startEcrStandIn } from "../testbed/ecr-stand-in.ts";
import { startMoto } from "../testbed/moto.ts";
import { buildLambdas } from "./build.ts";

const { values: flags } = parseArgs({
  options: {
    clusters: { type: "string", default: "20" },
    secrets: { type: "string", default: "10" },
    mode: { type: "string", default: "both" },
    reserved: { type: "string", default: "50" },
    "role-fraction": { type: "string", default: "0.1" },
    "user-writes": { type: "string", default: "5" },
    "fanout-concurrency": { type: "string", default: "10" },
    "ecr-latency-ms": { type: "string", default: "50" },
    before: { type: "boolean", default: false },
    real: { type: "string", default: "0" },
    check: { type: "boolean", default: false },
  },
});
const CLUSTERS = Number(flags.clusters);
const REAL = Number(flags.real);
const SECRETS = Number(flags.secrets);
const RESERVED = Number(flags.reserved);
const FANOUT = Number(flags["fanout-concurrency"]);
const USER_WRITES_PER_SECOND = Number(flags["user-writes"]);
const modes = flags.mode === "both" ? ["inline", "fanout"] : [flags.mode];
const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const PREFIX = "ecr-anywhere.centml.ai";
const names = contractNames(PREFIX);
// What the stack sets (infra/ecr-anywhere.ts), or what the refresher did before the budget.
const markBudget = Math.max(1, Math.floor(RESERVED * 0.5));
const refresherSettings = (mode: string) =>
  flags.before
    ? { markConcurrency: mode === "inline" ? 100 : 10, markAttempts: 1 } // 10 clusters x 10 Secrets
    : {
        markConcurrency:
          mode === "inline" ? markBudget : Math.max(1, Math.floor(markBudget / FANOUT)),
        markAttempts: 4,
      };

const work = await mkdtemp(join(tmpdir(), "ecr-anywhere-bench-fleet-"));
const results: Record<string, unknown>[] = [];
try {
  await buildLambdas(join(work, "dist"));
  for (const mode of modes) results.push(await run(mode));
} finally {
  await rm(work, { recursive: true, force: true });
}

const columns = Object.keys(results[0] ?? {});
console.log(columns.map((column) => column.padEnd(Math.max(column.length, 8))).join(" "));
for (const result of results)
  console.log(
    columns
      .map((column) => JSON.stringify(result[column]).padEnd(Math.max(column.length, 8)))
      .join(" "),
  );
for (const result of results) console.log(JSON.stringify(result));

// The targets of docs/performance.md: nothing throttled or failed, ECR under 10 calls a second.
if (flags.check) {
  const missed = results.flatMap((result) => [
    ...(["throttledAdmissions", "failedUserWrites", "refreshFailures"] as const)
      .filter((key) => Number(result[key]) > 0)
      .map((key) => `${result.mode}: ${key} ${result[key]}`),
    ...Object.entries(result.ecrPeakPerSecond as Record<string, number>)
      .filter(([, peak]) => peak > 10)
      .map(([region, peak]) => `${result.mode}: ECR ${peak} calls/s in ${region}`),
  ]);
  if (missed.length > 0) {
    console.error(`targets missed: ${missed.join("; ")}`);
    process.exitCode = 1;
  }
}

async function run(mode: string): Promise<Record<string, unknown>> {
  const moto = await startMoto();
  // A proxy that fails nothing: it counts the STS calls the webhook makes.
  const sts = await startFaultProxy(moto.url, /(?!)/, {
    status: 500,
    contentType: "text/plain",
    body: "",
  });
  const ecr = await startEcrStandIn();
  ecr.latencyMs = Number(flags["ecr-latency-ms"]);
  const awsEnv = {
    ...localAwsEnv({ records: moto.url, sts: sts.url, ecr: ecr.url }),
  };
  // The stack's shared token table (moto's DynamoDB), holding the token broker's key as the
  // stack's does; the refresher as it was had none (and its webhook federated with its own keys).
  const tokenTable: Record<string, string> = flags.before
    ? {}
    : {
        ECR_ANYWHERE_TOKEN_TABLE: await tokenTableWithBrokerKey(awsEnv),
        ECR_ANYWHERE_BROKER_USER: "ecr-anywhere-token-broker",
      };
  Object.assign(process.env, awsEnv, {
    POWERTOOLS_LOG_LEVEL: "SILENT",
    POWERTOOLS_METRICS_DISABLED: "true",
  });
  const webhookTls = await loopbackServerTls("bench-fleet-webhook");
  const pool = new LambdaPool({
    module: join(work, "dist/webhook/index.mjs"),
    reservedConcurrency: RESERVED,
    env: {
      ...awsEnv,
      ...tokenTable,
      POWERTOOLS_LOG_LEVEL: "ERROR",
      POWERTOOLS_METRICS_DISABLED: "true",
    },
    output: "ignore",
  });
  const webhook = await startFunctionUrlServer({ tls: webhookTls.server, handler: pool.handler });
  const clusterTls = await loopbackServerTls("bench-fleet-clusters");
  const fleet = await startClusterStandIn({
    tls: clusterTls.server,
    webhookCaPem: webhookTls.ca.cert,
    labelPrefix: PREFIX,
  });

  // N clusters, every Secret stale (expired an hour ago), a tenth minting through their own role.
  const stale = {
    [names.expiresAtAnnotation]: toRfc3339(Date.now() - 3600_000),
    [names.updatedAtAnnotation]: toRfc3339(Date.now() - 13 * 3600_000),
  };
  const recordLimit = pLimit(8);
  await Promise.all(
    Array.from({ length: CLUSTERS }, (_, index) =>
      recordLimit(async () => {
        const id = `fleet-${index}`;
        const token = sha256Hex(`webhook-${id}-${mode}`).slice(0, 43);
        const cluster = fleet.addCluster({
          id,
          token: `api-${id}`,
          webhookUrl: `${webhook.url}/v1/clusters/${id}/${token}`,
          webhookName: `secrets.${PREFIX}`,
        });
        cluster.namespaces.set("apps", { [names.namespaceLabel]: "enabled" });
        for (let secret = 0; secret < SECRETS; secret++)
          cluster.secrets.set(`apps/pull-${secret}`, {
            metadata: {
              name: `pull-${secret}`,
              namespace: "apps",
              uid: `${id}-${secret}`,
              resourceVersion: "1",
              labels: { [names.managedLabel]: "true" },
              annotations: { ...stale },
            },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": "e30=" },
          });
        const roleBound = index < Math.round(CLUSTERS * Number(flags["role-fraction"]));
        await putClusterRecord(moto.url, {
          clusterId: id,
          kubeconfig: kubeconfig(`${fleet.url}/clusters/${id}`, clusterTls.ca.cert, {
            name: "refresher",
            token: `api-${id}`,
          }),
          webhookTokenSha256: [sha256Hex(token)],
          registries: index % 5 === 0 ? [EAST, WEST] : [EAST],
          ...(roleBound ? { roleArn: `arn:aws:iam::123456789012:role/ecr-pull-${id}` } : {}),
        });
      }),
    ),
  );

  const real = await startRealClusters(mode, webhook.url, webhookTls.ca.cert, stale, moto.url);

  // Ordinary user writes meanwhile: new managed Secrets, spread over the fleet.
  let writing = true;
  let userWrites = 0;
  const users = (async () => {
    while (writing && USER_WRITES_PER_SECOND > 0) {
      const cluster = fleet.clusters.get(`fleet-${userWrites % CLUSTERS}`);
      const api = new ClusterApi(
        kubeconfig(`${fleet.url}/clusters/${cluster?.id}`, clusterTls.ca.cert, {
          name: "user",
          token: `api-${cluster?.id}`,
        }),
        AbortSignal.timeout(15_000),
      );
      void api
        .createManagedSecret("apps", `user-${userWrites++}`, names.managedLabel)
        .catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 1000 / USER_WRITES_PER_SECOND));
    }
  })();

  const settings = refresherSettings(mode);
  const env = {
    ...process.env,
    ECR_ANYWHERE_LABEL_PREFIX: PREFIX,
    ECR_ANYWHERE_CLUSTER_CONCURRENCY: "10",
    ECR_ANYWHERE_CLUSTER_DEADLINE_SECONDS: "90",
    ECR_ANYWHERE_MARK_CONCURRENCY: String(settings.markConcurrency),
    ECR_ANYWHERE_MARK_ATTEMPTS: String(settings.markAttempts),
  };
  const telemetry = createTelemetry("bench-fleet");
  const started = performance.now();
  let reports: readonly ClusterReport[];
  if (mode === "inline") {
    reports = (
      await refreshInline(
        refresherDependenciesFromEnv(env, { telemetry }),
        AbortSignal.timeout(600_000),
      )
    ).reports;
  } else {
    // The producer's list of cluster ids, then SQS in front of FANOUT concurrent workers, each
    // its own environment (its own mark budget).
    const producer = refresherDependenciesFromEnv(env, { telemetry });
    const queue = await producer.listClusterIds(AbortSignal.timeout(60_000));
    const collected: ClusterReport[] = [];
    await Promise.all(
      Array.from({ length: FANOUT }, async () => {
        const deps = refresherDependenciesFromEnv(env, { telemetry });
        for (let id = queue.shift(); id; id = queue.shift()) {
          const signal = AbortSignal.timeout(deps.config.clusterDeadlineMs);
          collected.push(await refreshCluster(await deps.readRecord(id, signal), deps, signal));
        }
      }),
    );
    reports = collected;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  for (const report of reports.filter((item) => !item.ok).slice(0, 5))
    console.error(`${mode}: ${report.clusterId}: ${report.problems.slice(0, 3).join(" | ")}`);
  writing = false;
  await users;
  await new Promise((resolve) => setTimeout(resolve, 500));

  const ecrPeakPerSecond: Record<string, number> = {};
  for (const region of new Set(ecr.calls.map((call) => call.region))) {
    const times = ecr.calls
      .filter((call) => call.region === region)
      .map((call) => call.atMs)
      .sort((a, b) => a - b);
    let peak = 0;
    for (let first = 0, last = 0; last < times.length; last++) {
      while ((times[last] ?? 0) - (times[first] ?? 0) >= 1000) first++;
      peak = Math.max(peak, last - first + 1);
    }
    ecrPeakPerSecond[region] = peak;
  }
  const userAdmissions = fleet.admissions.filter((admission) => admission.operation === "CREATE");
  // The real API servers' clusters must come out as the stand-in's do: every Secret refreshed.
  const realReports = reports.filter((report) => report.clusterId.startsWith("real-"));
  const realApiserverRssMb = real.planes.map((plane) => rssMb(plane.apiserverPid));
  const result = {
    clusters: CLUSTERS,
    secrets: CLUSTERS * SECRETS,
    mode,
    refresher: flags.before ? "before" : "after",
    reservedConcurrency: RESERVED,
    markConcurrency: settings.markConcurrency,
    throttledAdmissions: pool.stats.throttles,
    failedUserWrites: userAdmissions.filter((admission) => !admission.ok).length,
    userWrites: userAdmissions.length,
    refreshFailures: reports.reduce((sum, report) => sum + report.refreshFailures, 0),
    secretsRefreshed: reports.reduce((sum, report) => sum + report.secretsRefreshed, 0),
    markRetries: reports.reduce((sum, report) => sum + report.markRetries, 0),
    ecrCalls: ecr.calls.length,
    ecrPeakPerSecond,
    stsCalls: sts.forwarded,
    environmentsStarted: pool.stats.environmentsStarted,
    realClusters: realReports.length,
    realSecretsRefreshed: realReports.reduce((sum, report) => sum + report.secretsRefreshed, 0),
    realApiserverRssMb,
    peakConcurrency: pool.stats.peakConcurrency,
    wallSeconds: Math.round(wallSeconds * 10) / 10,
  };
  await real.stop();
  await webhook.close();
  await pool.close();
  await fleet.stop();
  await ecr.stop();
  await sts.stop();
  await moto.stop();
  return result;
}

/**
 * REAL clusters on real kube-apiservers sharing one etcd (a prefix each), every managed Secret
 * created stale before the webhook is registered, then the webhook registered as onboard does.
 */
async function startRealClusters(
  mode: string,
  webhookUrl: string,
  webhookCaPem: string,
  stale: Record<string, string>,
  motoUrl: string,
): Promise<{ planes: ControlPlane[]; stop: () => Promise<void> }> {
  const planes: ControlPlane[] = [];
  for (let index = 0; index < REAL; index++) {
    const first = planes[0];
    planes.push(
      await startControlPlane({
        etcdPrefix: `/fleet-${mode}-${index}`,
        ...(first ? { etcdUrl: first.etcdUrl } : {}),
      }),
    );
  }
  await Promise.all(
    planes.map(async (plane, index) => {
      const id = `real-${index}`;
      const config = new KubeConfig();
      config.loadFromString(plane.adminKubeconfig);
      const core = config.makeApiClient(CoreV1Api);
      await core.createNamespace({
        body: { metadata: { name: "apps", labels: { [names.namespaceLabel]: "enabled" } } },
      });
      for (let secret = 0; secret < SECRETS; secret++)
        await core.createNamespacedSecret({
          namespace: "apps",
          body: {
            metadata: {
              name: `pull-${secret}`,
              labels: { [names.managedLabel]: "true" },
              annotations: { ...stale },
            },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": "e30=" },
          },
        });
      const token = sha256Hex(`webhook-${id}-${mode}`).slice(0, 43);
      // The record before the webhook configuration, as onboard does: a call for a cluster with no
      // record yet is cached as unknown (403) by each warm environment for the record TTL.
      await putClusterRecord(motoUrl, {
        clusterId: id,
        kubeconfig: plane.adminKubeconfig,
        webhookTokenSha256: [sha256Hex(token)],
        registries: [EAST],
      });
      await config.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
        body: webhookConfiguration({
          webhookUrl: `${webhookUrl}/v1/clusters/${id}/${token}`,
          caPem: webhookCaPem,
          labelPrefix: PREFIX,
        }),
      });
      // Configurations reach the admission chain asynchronously: wait until a dry run is filled.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const probe = await core
          .createNamespacedSecret({
            namespace: "apps",
            dryRun: "All",
            body: {
              metadata: { name: "probe", labels: { [names.managedLabel]: "true" } },
              type: "kubernetes.io/dockerconfigjson",
              data: { ".dockerconfigjson": "e30=" },
            },
          })
          .catch(() => undefined);
        if (probe?.metadata?.annotations?.[names.expiresAtAnnotation] || Date.now() > deadline)
          break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }),
  );
  return {
    planes,
    // The first one runs the shared etcd: it stops last.
    stop: async () => {
      for (const plane of [...planes].reverse()) await plane.stop();
    },
  };
}

/** Resident memory of a process, in MB (Linux). */
function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
}

/** The shared token table, holding a broker key as the rotation function would store it. */
async function tokenTableWithBrokerKey(env: Record<string, string>): Promise<string> {
  const client = new DynamoDBClient({
    endpoint: env.AWS_ENDPOINT_URL_DYNAMODB,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? "", secretAccessKey: "x" },
  });
  await createTokenTable(client, "ecr-anywhere-tokens");
  await new DynamoBrokerKeyStore("ecr-anywhere-tokens", client).write(
    {
      accessKeyId: "AKIABENCHBROKERKEY01",
      secretAccessKey: "bench-broker-secret",
      storedAtMs: Date.now(),
    },
    AbortSignal.timeout(5000),
  );
  client.destroy();
  return "ecr-anywhere-tokens";
}
