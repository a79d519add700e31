/**
 * One hostile or hung API server must not starve the others: a stand-in that lists many stale
 * Secrets at once and never answers a PATCH shares the invocation's mark budget with a healthy
 * real kube-apiserver, and the healthy cluster still refreshes everything in the same run.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ClusterApi } from "../../functions/adapters/kubernetes.ts";
import { refresherConfigFromEnv } from "../../functions/core/config.ts";
import { contractNames } from "../../functions/core/contract.ts";
import { MarkBudget } from "../../functions/lib/mark-budget.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import {
  type RefreshClusterDependencies,
  refreshCluster,
} from "../../functions/refresher/refresh-cluster.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";
import { createManagedSecrets, startWebhookHarness } from "./webhook-harness.ts";

const PREFIX = "fair.example.com";
const NAMESPACE = "fair-apps";
const HEALTHY_SECRETS = 6;
const HUNG_SECRETS = 50;
const TOKEN_SECONDS = 6;
const names = contractNames(PREFIX);
const adminKubeconfig = inject("adminKubeconfig");

let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let hung: Server;
let hungKubeconfig = "";
let patchesHeld = 0;

/** An API server that answers lists at once, with every Secret stale, and never a PATCH. */
async function startHungApiServer(): Promise<void> {
  const tls = await loopbackServerTls("hung-api-server");
  const expired = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, "Z");
  hung = createServer({ cert: tls.server.cert, key: tls.server.key }, (request, response) => {
    const json = (status: number, body: object) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    if (request.method === "PATCH") {
      patchesHeld++;
      return; // held open: the mark never gets an answer
    }
    if (request.url?.startsWith("/api/v1/namespaces?"))
      return json(200, {
        kind: "NamespaceList",
        apiVersion: "v1",
        metadata: {},
        items: [{ metadata: { name: "hung", labels: { [names.namespaceLabel]: "enabled" } } }],
      });
    if (request.url?.startsWith("/api/v1/namespaces/hung/secrets"))
      return json(200, {
        kind: "PartialObjectMetadataList",
        apiVersion: "meta.k8s.io/v1",
        metadata: {},
        items: Array.from({ length: HUNG_SECRETS }, (_, index) => ({
          metadata: {
            name: `s-${index}`,
            namespace: "hung",
            uid: `uid-${index}`,
            resourceVersion: "1",
            annotations: { [names.expiresAtAnnotation]: expired },
          },
        })),
      });
    json(404, { kind: "Status", apiVersion: "v1", status: "Failure", code: 404 });
  });
  await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
  hungKubeconfig = kubeconfig(
    `https://127.0.0.1:${(hung.address() as AddressInfo).port}`,
    tls.ca.cert,
    { name: "hung", token: "t" },
  );
}

function record(clusterId: string, text: string) {
  return { record: { clusterId, kubeconfig: text }, revision: 0, keyArn: "" };
}

beforeAll(async () => {
  process.env.ECR_ANYWHERE_LABEL_PREFIX = PREFIX;
  harness = await startWebhookHarness(inject("motoUrl"), adminKubeconfig, "fair-webhook");
  harness.ecr.expiresInSeconds = TOKEN_SECONDS;
  await harness.core.createNamespace({
    body: { metadata: { name: NAMESPACE, labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await harness.register({
    name: "ecr-anywhere-fair-e2e",
    clusterId: "fair-webhook",
    token: harness.token,
    labelPrefix: PREFIX,
    probeNamespace: NAMESPACE,
  });
  await createManagedSecrets(harness.core, NAMESPACE, names.managedLabel, HEALTHY_SECRETS);
  harness.ecr.expiresInSeconds = 12 * 3600;
  harness.reset();
  await startHungApiServer();
  // Past half their life: every healthy Secret is stale.
  await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS / 2) * 1000 + 1200));
});

afterAll(async () => {
  hung?.closeAllConnections();
  await new Promise<void>((resolve) => (hung ? hung.close(() => resolve()) : resolve()));
  await harness?.stop();
});

describe("a hung API server beside a healthy one, in one run", () => {
  it("holds at most its share of the budget, and the healthy cluster refreshes everything", async () => {
    const config = refresherConfigFromEnv({
      ECR_ANYWHERE_LABEL_PREFIX: PREFIX,
      ECR_ANYWHERE_MARK_ATTEMPTS: "1",
      ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "true",
    });
    const deps: RefreshClusterDependencies = {
      config,
      now: Date.now,
      clusterApi: (text, signal) => new ClusterApi(text, signal),
      saveRecord: async (stored) => stored,
      // A short slot here; the stack's is the webhook's 10 s timeout plus a margin.
      markBudget: new MarkBudget({ total: 4, slotMs: 2000 }),
    };
    const started = Date.now();
    const hungRun = refreshCluster(
      record("hung", hungKubeconfig),
      deps,
      AbortSignal.timeout(12_000),
    );
    // Give the hung cluster a head start: it has taken every slot it may before the healthy one asks.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(patchesHeld).toBe(4);
    const healthy = await refreshCluster(
      record("healthy", adminKubeconfig),
      deps,
      AbortSignal.timeout(8_000),
    );
    expect(healthy).toMatchObject({
      secretsStale: HEALTHY_SECRETS,
      secretsRefreshed: HEALTHY_SECRETS,
      refreshFailures: 0,
    });
    expect(Date.now() - started).toBeLessThan(8_000);
    const hungReport = await hungRun;
    expect(hungReport.secretsRefreshed).toBe(0);
    expect(hungReport.problems.join("\n")).toMatch(/no answer to the mark within 2 s/);
  });
});
