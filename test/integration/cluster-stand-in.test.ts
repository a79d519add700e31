/**
 * The fleet benchmark's cluster stand-in must behave like kube-apiserver where the refresher and
 * the webhook can tell: the AdmissionReview it sends has the shape of the ones recorded from the
 * real API server (test/fixtures/), and a webhook failure reads as kube-apiserver words it (the
 * message recorded by test/e2e/throttling.e2e.test.ts).
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterApi, KubernetesError } from "../../functions/adapters/kubernetes.ts";
import { contractNames } from "../../functions/core/contract.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import { type ClusterStandIn, startClusterStandIn } from "../../testbed/cluster-stand-in.ts";
import { kubeconfig as testbedKubeconfig } from "../../testbed/control-plane.ts";

const names = contractNames();
const recorded = JSON.parse(
  readFileSync(new URL("../fixtures/admission-review-update.json", import.meta.url), "utf8"),
) as {
  request: Record<string, unknown>;
};
let fleet: ClusterStandIn;
let clusterCaPem: string;
let webhookAnswer: { status: number; body: (uid: string) => unknown } = {
  status: 200,
  body: () => ({}),
};
let stopWebhook: () => void;

function api(clusterId: string, token = `api-${clusterId}`) {
  const kubeconfig = testbedKubeconfig(`${fleet.url}/clusters/${clusterId}`, clusterCaPem, {
    name: "refresher",
    token,
  });
  return new ClusterApi(kubeconfig, AbortSignal.timeout(10_000));
}

beforeAll(async () => {
  const webhookTls = await loopbackServerTls("stand-in-test-webhook");
  const webhook = createServer(webhookTls.server, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const uid = (
        JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request: { uid: string } }
      ).request.uid;
      response.writeHead(webhookAnswer.status, { "content-type": "application/json" });
      response.end(JSON.stringify(webhookAnswer.body(uid)));
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  stopWebhook = () => webhook.close();
  const clusterTls = await loopbackServerTls("stand-in-test-clusters");
  clusterCaPem = clusterTls.ca.cert;
  fleet = await startClusterStandIn({
    tls: clusterTls.server,
    webhookCaPem: webhookTls.ca.cert,
    labelPrefix: "ecr-anywhere.centml.ai",
  });
  const port = (webhook.address() as AddressInfo).port;
  const cluster = fleet.addCluster({
    id: "one",
    token: "api-one",
    webhookUrl: `https://127.0.0.1:${port}/v1/clusters/one/${"t".repeat(43)}`,
    webhookName: "secrets.ecr-anywhere.centml.ai",
  });
  cluster.namespaces.set("apps", { [names.namespaceLabel]: "enabled" });
  for (let index = 0; index < 5; index++)
    cluster.secrets.set(`apps/s-${index}`, {
      metadata: {
        name: `s-${index}`,
        namespace: "apps",
        uid: `u-${index}`,
        resourceVersion: "1",
        labels: { [names.managedLabel]: "true" },
      },
      type: "kubernetes.io/dockerconfigjson",
      data: { ".dockerconfigjson": "e30=" },
    });
});

afterAll(async () => {
  await fleet?.stop();
  stopWebhook?.();
});

describe("cluster stand-in", () => {
  it("sends the webhook an UPDATE review shaped like the real API server's", async () => {
    webhookAnswer = {
      status: 200,
      body: (uid) => ({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: { uid, allowed: true },
      }),
    };
    fleet.recordReviews = true;
    await api("one").annotate(
      "apps",
      "s-0",
      names.markedForUpdateAtAnnotation,
      "2026-11-23T00:00:00Z",
    );
    const sent = fleet.sentReviews.at(-1) as { request: Record<string, unknown> };
    expect(Object.keys(sent.request).sort()).toEqual(Object.keys(recorded.request).sort());
    for (const field of [
      "kind",
      "resource",
      "requestKind",
      "requestResource",
      "operation",
      "dryRun",
      "options",
    ])
      expect(sent.request[field]).toEqual(recorded.request[field]);
    expect(
      (sent.request.object as { metadata: { annotations: Record<string, string> } }).metadata
        .annotations[names.markedForUpdateAtAnnotation],
    ).toBe("2026-11-23T00:00:00Z");
    expect(sent.request.oldObject).toMatchObject({ metadata: { name: "s-0" } });
  });

  it("fails a write whose webhook answered 429 with kube-apiserver's message", async () => {
    webhookAnswer = { status: 429, body: () => ({ Message: "Rate Exceeded." }) };
    const error = await api("one")
      .annotate("apps", "s-1", names.markedForUpdateAtAnnotation, "x")
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubernetesError);
    expect((error as KubernetesError).message).toBe(
      'mark Secret apps/s-1: HTTP 500: Internal error occurred: failed calling webhook "secrets.ecr-anywhere.centml.ai": failed to call webhook: the server has received too many requests and has asked us to try again later',
    );
  });

  it("reports a webhook's denial with its message and code", async () => {
    webhookAnswer = {
      status: 200,
      body: (uid) => ({
        response: { uid, allowed: false, status: { code: 403, message: "ecr-anywhere: no" } },
      }),
    };
    const error = (await api("one")
      .annotate("apps", "s-2", "a/b", "x")
      .catch((caught: unknown) => caught)) as KubernetesError;
    expect(error.status).toBe(403);
    expect(error.message).toMatch(
      /admission webhook "secrets.ecr-anywhere.centml.ai" denied the request: ecr-anywhere: no$/,
    );
  });

  it("pages lists, and refuses a wrong token", async () => {
    expect(await api("one").managedSecrets("apps", names.managedLabel, 2)).toHaveLength(5);
    await expect(api("one", "wrong").enabledNamespaces(names.namespaceLabel)).rejects.toThrow(
      /HTTP 401/,
    );
  });
});
