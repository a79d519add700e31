/**
 * How a cluster proves itself to the webhook, on real kube-apiservers. With the token in the URL,
 * kube-apiserver repeats the URL, token included, in the error a user sees when a call fails in
 * transit: shown here first. With header authentication (an API server started with an admission
 * kubeconfig), the URL carries no secret, the webhook reads the token from `Authorization`, and the
 * same failure shows nothing secret. That API server is started as RKE2 runs one: its admission
 * configuration also configures PodSecurity, merged rather than replaced, and both keep working.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { mergeAdmissionConfiguration } from "../../cli/core/admission-config.ts";
import { contractNames, DEFAULT_LABEL_PREFIX } from "../../functions/core/contract.ts";
import {
  webhookConfiguration,
  webhookCredentialsKubeconfig,
} from "../../k8s/webhook-configuration.ts";
import { type ControlPlane, startControlPlane } from "../../testbed/control-plane.ts";
import { freePort, waitFor } from "../../testbed/ports.ts";
import { retireNamespace, startWebhookHarness } from "./webhook-harness.ts";

const CLUSTER = "auth-e2e";
/** PodSecurity enforcing `restricted` by default: every namespace without its own labels. */
const POD_SECURITY_ADMISSION = {
  apiVersion: "apiserver.config.k8s.io/v1",
  kind: "AdmissionConfiguration",
  plugins: [
    {
      name: "PodSecurity",
      configuration: {
        apiVersion: "pod-security.admission.config.k8s.io/v1",
        kind: "PodSecurityConfiguration",
        defaults: { enforce: "restricted", "enforce-version": "latest" },
        exemptions: { usernames: [], runtimeClasses: [], namespaces: ["kube-system"] },
      },
    },
  ],
};
let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let headerPlane: ControlPlane;
let configDir: string;
let closedPort: number;

interface Cluster {
  core: CoreV1Api;
  admission: AdmissionregistrationV1Api;
}
let shared: Cluster;
let headerCluster: Cluster;

function clients(kubeconfig: string): Cluster {
  const config = new KubeConfig();
  config.loadFromString(kubeconfig);
  return {
    core: config.makeApiClient(CoreV1Api),
    admission: config.makeApiClient(AdmissionregistrationV1Api),
  };
}

beforeAll(async () => {
  harness = await startWebhookHarness(inject("motoUrl"), inject("adminKubeconfig"), CLUSTER);
  shared = { core: harness.core, admission: harness.admission };
  // Nothing listens here: every call to it fails in transit, at once.
  closedPort = await freePort();
  configDir = await mkdtemp(join(tmpdir(), "ecr-anywhere-admission-config-"));
  const credentialsPath = join(configDir, "webhook-credentials.kubeconfig");
  await writeFile(
    credentialsPath,
    stringify(
      webhookCredentialsKubeconfig([
        { webhookUrl: harness.server.url, token: harness.token },
        { webhookUrl: `https://127.0.0.1:${closedPort}`, token: harness.token },
      ]),
    ),
    { mode: 0o600 },
  );
  // As RKE2 and CIS-hardened k3s run it: an AdmissionConfiguration for PodSecurity already, which
  // header authentication is merged into (as onboard --dry-run --admission-config renders it).
  const admissionPath = join(configDir, "admission.yaml");
  await writeFile(
    admissionPath,
    mergeAdmissionConfiguration(stringify(POD_SECURITY_ADMISSION), credentialsPath),
  );
  headerPlane = await startControlPlane({
    apiserverArgs: [`--admission-control-config-file=${admissionPath}`],
  });
  headerCluster = clients(headerPlane.adminKubeconfig);
}, 180_000);

afterAll(async () => {
  await harness?.stop();
  await headerPlane?.stop();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

/** Registers a webhook for `labelPrefix` at `webhookUrl`, in a namespace enabled for it. */
async function enable(cluster: Cluster, name: string, labelPrefix: string, webhookUrl: string) {
  const names = contractNames(labelPrefix);
  await cluster.core.createNamespace({
    body: { metadata: { name, labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await cluster.admission.createMutatingWebhookConfiguration({
    body: webhookConfiguration({ name, labelPrefix, webhookUrl, caPem: harness.caPem }),
  });
  return {
    names,
    cleanup: async () => {
      await cluster.admission.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
      await retireNamespace(cluster.core, name);
    },
  };
}

/** Writes managed Secrets until the webhook configuration is in effect and one fails; its message. */
async function failedWrite(cluster: Cluster, namespace: string, managedLabel: string) {
  let message = "";
  let attempt = 0;
  await waitFor(
    async () => {
      try {
        await cluster.core.createNamespacedSecret({
          namespace,
          dryRun: "All",
          body: {
            metadata: { name: `probe-${attempt++}`, labels: { [managedLabel]: "true" } },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": "e30=" },
          },
        });
        return false;
      } catch (error) {
        const body = error instanceof ApiException ? String(error.body) : String(error);
        message = (JSON.parse(body) as { message?: string }).message ?? body;
        return message.includes("failed calling webhook");
      }
    },
    30_000,
    `the webhook configuration in ${namespace} to take effect`,
  );
  return message;
}

describe("token in the URL (managed control planes)", () => {
  it("shows the token to the user whose write failed in transit: the leak header auth removes", async () => {
    const url = `https://127.0.0.1:${closedPort}/v1/clusters/${CLUSTER}/${harness.token}`;
    const { names, cleanup } = await enable(shared, "auth-leak", "leak.ecr-anywhere.test", url);
    try {
      const message = await failedWrite(shared, "auth-leak", names.managedLabel);
      expect(message).toContain("failed to call webhook");
      expect(message).toContain(harness.token);
    } finally {
      await cleanup();
    }
  });
});

describe("token in an Authorization header (API servers you configure)", () => {
  it("is read from the header the admission kubeconfig adds, with a path that carries no secret", async () => {
    const url = `${harness.server.url}/v1/clusters/${CLUSTER}`;
    // The webhook's own label prefix (its configuration): on this API server nothing else uses it.
    const { names, cleanup } = await enable(
      headerCluster,
      "auth-header",
      DEFAULT_LABEL_PREFIX,
      url,
    );
    try {
      await waitFor(
        async () => {
          const created = await headerCluster.core.createNamespacedSecret({
            namespace: "auth-header",
            dryRun: "All",
            body: {
              metadata: { name: "ecr-pull", labels: { [names.managedLabel]: "true" } },
              type: "kubernetes.io/dockerconfigjson",
              data: { ".dockerconfigjson": "e30=" },
            },
          });
          return created.metadata?.annotations?.[names.expiresAtAnnotation] !== undefined;
        },
        30_000,
        "a Secret filled through header authentication",
      );
      const call = harness.events.at(-1);
      expect(call?.rawPath).toBe(`/v1/clusters/${CLUSTER}`);
      expect(call?.headers.authorization).toBe(`Bearer ${harness.token}`);
    } finally {
      await cleanup();
    }
  });

  it("shows nothing secret when a call fails in transit", async () => {
    const url = `https://127.0.0.1:${closedPort}/v1/clusters/${CLUSTER}`;
    const { names, cleanup } = await enable(headerCluster, "auth-quiet", "quiet.test", url);
    try {
      const message = await failedWrite(headerCluster, "auth-quiet", names.managedLabel);
      expect(message).toContain(`/v1/clusters/${CLUSTER}?timeout=`);
      expect(message).not.toContain(harness.token);
    } finally {
      await cleanup();
    }
  });
});

describe("header authentication merged into a PodSecurity admission configuration", () => {
  const NAMESPACE = "auth-pod-security";
  /** A Pod as the restricted level wants it, or one with none of its settings (baseline). */
  const pod = (name: string, restricted: boolean): V1Pod => ({
    metadata: { name },
    spec: {
      automountServiceAccountToken: false,
      ...(restricted
        ? { securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } } }
        : {}),
      containers: [
        {
          name: "app",
          image: "registry.example/app:1",
          ...(restricted
            ? {
                securityContext: {
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ["ALL"] },
                },
              }
            : {}),
        },
      ],
    },
  });

  it("still enforces the file's PodSecurity defaults on the API server that sends the token in a header", async () => {
    // No pod-security.kubernetes.io labels: only the configuration's defaults say "restricted".
    await headerCluster.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    try {
      // No controller manager here makes the default ServiceAccount: the Pods need one to be admitted.
      await headerCluster.core.createNamespacedServiceAccount({
        namespace: NAMESPACE,
        body: { metadata: { name: "default" } },
      });
      const refused = await headerCluster.core
        .createNamespacedPod({
          namespace: NAMESPACE,
          dryRun: "All",
          body: pod("unrestricted", false),
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toBeInstanceOf(ApiException);
      expect((refused as ApiException<string>).code).toBe(403);
      expect(String((refused as ApiException<string>).body)).toContain(
        'violates PodSecurity \\"restricted:latest\\"',
      );
      const admitted = await headerCluster.core.createNamespacedPod({
        namespace: NAMESPACE,
        dryRun: "All",
        body: pod("restricted", true),
      });
      expect(admitted.metadata?.name).toBe("restricted");
    } finally {
      await retireNamespace(headerCluster.core, NAMESPACE);
    }
  });
});
