/**
 * A managed Secret kept in Git and applied by a GitOps tool, on the real kube-apiserver: whatever
 * the tool re-applies (server-side apply as Argo CD or Flux, or kubectl's client-side apply), the
 * webhook runs on that write too, so the Secret ends filled and keeps the contract's annotations.
 */
import {
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeDockerConfig } from "../support/admission.ts";
import { EAST, names, retireNamespace, startWebhookHarness, WEST } from "./webhook-harness.ts";

const NAMESPACE = "gitops";
const adminKubeconfig = inject("adminKubeconfig");
let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let objects: KubernetesObjectApi;

/** The Secret as it sits in Git: a placeholder the webhook replaces. */
function fromGit(name: string): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: NAMESPACE, labels: { [names.managedLabel]: "true" } },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from("FAKE").toString("base64") },
  };
}

function expectFilled(secret: V1Secret): void {
  const auths = decodeDockerConfig(secret.data?.[".dockerconfigjson"]).auths;
  expect(Object.keys(auths).sort()).toEqual([EAST, WEST].sort());
  expect(secret.metadata?.annotations?.[names.expiresAtAnnotation]).toMatch(/Z$/);
  expect(secret.metadata?.annotations?.[names.updatedAtAnnotation]).toMatch(/Z$/);
}

const apply = (secret: V1Secret, fieldManager: string) =>
  objects.patch(secret, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);

beforeAll(async () => {
  harness = await startWebhookHarness(inject("motoUrl"), adminKubeconfig, "gitops");
  await harness.core.createNamespace({
    body: { metadata: { name: NAMESPACE, labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await harness.register({
    name: "ecr-anywhere-gitops",
    clusterId: "gitops",
    token: harness.token,
    probeNamespace: NAMESPACE,
  });
  const config = new KubeConfig();
  config.loadFromString(adminKubeconfig);
  objects = KubernetesObjectApi.makeApiClient(config);
});

afterAll(async () => {
  if (harness) await retireNamespace(harness.core, NAMESPACE);
  await harness?.stop();
});

describe("a managed Secret applied from Git", () => {
  it("stays filled when the tool re-applies the Git manifest with server-side apply", async () => {
    expectFilled(await apply(fromGit("synced"), "argocd-controller"));
    // An auto-sync re-applies the placeholder: the webhook fills the Secret again on that write.
    const resynced = await apply(fromGit("synced"), "argocd-controller");
    expectFilled(resynced);
    // Another tool (field manager) applying the same manifest changes nothing about that.
    expectFilled(await apply(fromGit("synced"), "kustomize-controller"));
  });

  it("stays filled when kubectl's client-side apply re-applies the Git manifest", async () => {
    const manifest = fromGit("client-side");
    const lastApplied = JSON.stringify(manifest);
    manifest.metadata = {
      ...manifest.metadata,
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": lastApplied },
    };
    expectFilled(
      await harness.core.createNamespacedSecret({ namespace: NAMESPACE, body: manifest }),
    );
    // What `kubectl apply` sends the second time: a strategic merge patch back to the manifest.
    const patched = await harness.core.patchNamespacedSecret(
      {
        namespace: NAMESPACE,
        name: "client-side",
        body: {
          data: manifest.data,
          metadata: {
            annotations: { "kubectl.kubernetes.io/last-applied-configuration": lastApplied },
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
    expectFilled(patched);
    expect(
      patched.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"],
    ).toBe(lastApplied);
  });
});
