/**
 * The webhook as the end-to-end tests run it: the ECR stand-in, a cluster record in moto, the
 * function-URL server, and a MutatingWebhookConfiguration in the real API server pointing at it.
 */
import { join } from "node:path";
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { contractNames } from "../../functions/core/contract.ts";
import {
  type FunctionUrlHandler,
  type FunctionUrlServer,
  startFunctionUrlServer,
} from "../../functions/local/function-url-server.ts";
import { LambdaPool } from "../../functions/local/lambda-pool.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import type { FunctionUrlEvent } from "../../functions/webhook/http.ts";
import { createWebhookFromEnv } from "../../functions/webhook/webhook.ts";
import { webhookConfiguration } from "../../k8s/webhook-configuration.ts";
import { localAwsEnv, putClusterRecord } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import { waitFor } from "../../testbed/ports.ts";
import { clusterRecord, newWebhookToken } from "../support/admission.ts";

export const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
export const WEST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
export const names = contractNames();

export interface WebhookHarness {
  readonly ecr: EcrStandIn;
  readonly server: FunctionUrlServer;
  readonly events: FunctionUrlEvent[];
  readonly caPem: string;
  readonly core: CoreV1Api;
  readonly admission: AdmissionregistrationV1Api;
  readonly objects: KubernetesObjectApi;
  /** Replaces the webhook with a new instance (empty caches), optionally on another clock. */
  reset(now?: () => number): void;
  /** Registers a webhook configuration and waits until the API server uses it. */
  register(options: {
    name: string;
    clusterId: string;
    token: string;
    labelPrefix?: string;
    probeNamespace?: string;
  }): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /**
   * Serve through the Lambda pool (isolated environments, each with its own caches, 429 past this
   * many) instead of one in-process webhook. Clock control (`reset(now)`) needs the in-process one.
   */
  readonly lambdaConcurrency?: number;
}

export async function startWebhookHarness(
  motoUrl: string,
  adminKubeconfig: string,
  clusterId: string,
  options: HarnessOptions = {},
): Promise<WebhookHarness & { token: string; pool: LambdaPool | undefined }> {
  const ecr = await startEcrStandIn();
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url }));
  // Logs are asserted by the integration tests; here they would only bury the output.
  process.env.POWERTOOLS_LOG_LEVEL = "CRITICAL";
  const token = newWebhookToken();
  await putClusterRecord(motoUrl, clusterRecord(clusterId, token.sha256, [EAST, WEST]));
  const pool = options.lambdaConcurrency
    ? new LambdaPool({
        module: join(import.meta.dirname, "../../functions/webhook/handler.ts"),
        reservedConcurrency: options.lambdaConcurrency,
        output: "ignore",
      })
    : undefined;
  let webhook: FunctionUrlHandler = pool?.handler ?? createWebhookFromEnv(process.env);
  const events: FunctionUrlEvent[] = [];
  const { ca, server: tls } = await loopbackServerTls("ecr-anywhere-e2e-webhook");
  const server = await startFunctionUrlServer({
    tls,
    handler: (event, context) => webhook(event, context),
    onEvent: (event) => events.push(event),
  });
  const config = new KubeConfig();
  config.loadFromString(adminKubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  const admission = config.makeApiClient(AdmissionregistrationV1Api);
  const registered: string[] = [];

  return {
    token: token.token,
    ecr,
    server,
    events,
    caPem: ca.cert,
    core,
    admission,
    objects: KubernetesObjectApi.makeApiClient(config),
    pool,
    reset(now) {
      if (pool) {
        if (now) throw new Error("a clock cannot be set on Lambda environments");
        // New environments read process.env afresh and start with empty caches.
        void pool.recycle();
        return;
      }
      webhook = createWebhookFromEnv(process.env, now ? { now } : {});
    },
    async register({ name, clusterId: id, token: urlToken, labelPrefix, probeNamespace }) {
      await admission.createMutatingWebhookConfiguration({
        body: webhookConfiguration({
          name,
          labelPrefix,
          webhookUrl: `${server.url}/v1/clusters/${id}/${urlToken}`,
          caPem: ca.cert,
        }),
      });
      registered.push(name);
      if (!probeNamespace) return;
      const probeNames = contractNames(labelPrefix);
      // Webhook configurations reach the API server's admission chain asynchronously.
      await waitFor(
        async () => {
          const probe = await core.createNamespacedSecret({
            namespace: probeNamespace,
            dryRun: "All",
            body: {
              metadata: { name: "probe", labels: { [probeNames.managedLabel]: "true" } },
              type: "kubernetes.io/dockerconfigjson",
              data: { ".dockerconfigjson": "e30=" },
            },
          });
          return probe.metadata?.annotations?.[probeNames.expiresAtAnnotation] !== undefined;
        },
        30_000,
        `webhook configuration ${name} to take effect`,
      );
    },
    async stop() {
      for (const name of registered)
        await admission.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
      await server.close();
      await pool?.close();
      await ecr.stop();
    },
  };
}

/**
 * Deletes a test namespace for good. The test bed runs no namespace controller, so a deleted
 * namespace would stay Terminating: still labelled, it would look enabled to the next suite's
 * refresher, and nothing could be created in it again. So its labels go first, and the deletion is
 * finished as the controller would (finalizers cleared).
 */
export async function retireNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core
    .patchNamespace(
      { name, body: { metadata: { labels: null } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )
    .catch(() => undefined);
  await core.deleteNamespace({ name }).catch(() => undefined);
  const terminating = await core.readNamespace({ name }).catch(() => undefined);
  if (terminating?.metadata?.deletionTimestamp)
    await core
      .replaceNamespaceFinalize({ name, body: { ...terminating, spec: { finalizers: [] } } })
      .catch(() => undefined);
}

/** Creates `count` managed Secrets `pull-0`, `pull-1`, … with junk data for the webhook to replace. */
export async function createManagedSecrets(
  core: CoreV1Api,
  namespace: string,
  managedLabel: string,
  count: number,
): Promise<void> {
  for (let index = 0; index < count; index++)
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: `pull-${index}`, labels: { [managedLabel]: "true" } },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": "e30=" },
      },
    });
}
