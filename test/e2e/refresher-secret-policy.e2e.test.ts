/**
 * The refresher's Secret permissions on a real kube-apiserver: RBAC alone lets its token create
 * any Secret in an enabled namespace (a service-account-token Secret included); with the
 * ValidatingAdmissionPolicy onboard applies, it may create and change only managed
 * dockerconfigjson Secrets.
 */
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { contractNames } from "../../functions/core/contract.ts";
import { refresherRbac } from "../../k8s/refresher-rbac.ts";
import {
  refresherSecretPolicy,
  SECRET_POLICY_MINIMUM_MINOR,
} from "../../k8s/refresher-secret-policy.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";

const adminKubeconfig = inject("adminKubeconfig");
const server = inject("kubeServer");
const caPem = inject("kubeCaPem");
// Below 1.30 there is no ValidatingAdmissionPolicy (onboard leaves it out): only RBAC is tested.
const hasPolicy = inject("kubeMinor") >= SECRET_POLICY_MINIMUM_MINOR;
const NAMESPACE = "policy-apps";
const LABEL_PREFIX = "policy.ecr-anywhere.test";
const names = contractNames(LABEL_PREFIX);
// Its own ServiceAccount, so this file's policy never meets another suite's refresher.
const SERVICE_ACCOUNT = "policy-refresher";

let admin: { core: CoreV1Api; objects: KubernetesObjectApi };
let refresher: CoreV1Api;

function clients(text: string) {
  const config = new KubeConfig();
  config.loadFromString(text);
  return {
    core: config.makeApiClient(CoreV1Api),
    objects: KubernetesObjectApi.makeApiClient(config),
  };
}

/** Objects this file created outside its namespace, removed again so other suites find the API server as it was. */
const createdOutside: KubernetesObject[] = [];

async function create(objects: readonly KubernetesObject[]): Promise<void> {
  for (const object of objects) {
    const created = await admin.objects
      .create(object)
      .then(() => true)
      .catch((error: unknown) => {
        if (!(error instanceof ApiException && error.code === 409)) throw error;
        return false;
      });
    // Cluster-wide objects, and the Role and RoleBinding k8s/ puts in `default` (fixed names
    // another suite's refresher creates too), are removed again after this file.
    if (created && object.metadata?.namespace !== NAMESPACE) createdOutside.push(object);
  }
}

const secret = (name: string, type: string, managed: boolean): V1Secret => ({
  metadata: { name, ...(managed ? { labels: { [names.managedLabel]: "true" } } : {}) },
  type,
  ...(type === "kubernetes.io/service-account-token"
    ? { metadata: { name, annotations: { "kubernetes.io/service-account.name": "default" } } }
    : {}),
  data:
    type === "kubernetes.io/dockerconfigjson"
      ? { ".dockerconfigjson": Buffer.from('{"auths":{}}').toString("base64") }
      : {},
});

/** The status of a create by the refresher: 201 when it went through. */
async function refresherCreates(body: V1Secret): Promise<number> {
  try {
    await refresher.createNamespacedSecret({ namespace: NAMESPACE, body });
    return 201;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

/** The status of a merge patch by the refresher: 200 when it went through. */
function patchAsRefresher(name: string, body: object): Promise<number> {
  return refresher
    .patchNamespacedSecret(
      { namespace: NAMESPACE, name, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )
    .then(() => 200)
    .catch((error: unknown) => (error instanceof ApiException ? error.code : 0));
}

beforeAll(async () => {
  admin = clients(adminKubeconfig);
  await admin.core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch(() => {});
  // No ClusterRoleBinding: its fixed name binds another suite's refresher.
  const rbac = refresherRbac({
    namespaces: [NAMESPACE],
    labelPrefix: LABEL_PREFIX,
    serviceAccount: SERVICE_ACCOUNT,
    refresherNamespace: NAMESPACE,
  });
  await create(rbac.filter((object) => object.kind !== "ClusterRoleBinding"));
  const request = await admin.core.createNamespacedServiceAccountToken({
    namespace: NAMESPACE,
    name: SERVICE_ACCOUNT,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  refresher = clients(
    kubeconfig(server, caPem, { name: SERVICE_ACCOUNT, token: request.status?.token ?? "" }),
  ).core;
});

afterAll(async () => {
  // Leave the shared API server as found: the policy, ClusterRoles, and the objects in `default`.
  for (const object of createdOutside.reverse())
    await admin?.objects.delete(object).catch(() => undefined);
});

describe("the refresher's token", () => {
  it("with RBAC alone, can create a Secret that is not a managed one (the gap the policy closes)", async () => {
    expect(await refresherCreates(secret(`opaque-${Date.now()}`, "Opaque", false))).toBe(201);
  });

  it.skipIf(!hasPolicy)(
    "with the policy, can create and mark only managed dockerconfigjson Secrets",
    async () => {
      await create(
        refresherSecretPolicy({
          labelPrefix: LABEL_PREFIX,
          serviceAccount: SERVICE_ACCOUNT,
          refresherNamespace: NAMESPACE,
        }),
      );
      // The API server loads a new policy within seconds.
      const deadline = Date.now() + 30_000;
      let status = 201;
      while (status === 201 && Date.now() < deadline) {
        status = await refresherCreates(secret(`opaque-${Date.now()}`, "Opaque", false));
        if (status === 201) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(status).toBe(403);
      expect(
        await refresherCreates(secret("sa-token", "kubernetes.io/service-account-token", false)),
      ).toBe(403);
      expect(
        await refresherCreates(secret("unlabelled", "kubernetes.io/dockerconfigjson", false)),
      ).toBe(403);
      expect(
        await refresherCreates(secret("managed", "kubernetes.io/dockerconfigjson", true)),
      ).toBe(201);
      expect(
        await patchAsRefresher("managed", {
          metadata: { annotations: { [names.markedForUpdateAtAnnotation]: "now" } },
        }),
      ).toBe(200);
    },
  );

  it.skipIf(!hasPolicy)(
    "with the policy, cannot change a Secret it does not manage, nor unmanage one",
    async () => {
      await admin.core.createNamespacedSecret({
        namespace: NAMESPACE,
        body: secret("someone-elses", "Opaque", false),
      });
      expect(
        await patchAsRefresher("someone-elses", { metadata: { annotations: { x: "y" } } }),
      ).toBe(403);
      expect(
        await patchAsRefresher("managed", { metadata: { labels: { [names.managedLabel]: null } } }),
      ).toBe(403);
    },
  );
});
