/**
 * The objects the CLI puts in a cluster, shared by its commands: the refresher's objects, the
 * webhook configuration, and finding an onboarded cluster's registration safely.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { DEFAULT_LABEL_PREFIX } from "../../functions/core/contract.ts";
import { refresherRbac, refresherSecretPolicy, webhookConfiguration } from "../../k8s/templates.ts";
import {
  isHeaderModeUrl,
  MANAGED_BY_LABEL,
  type OnboardInputs,
  refresherNamespaceObject,
  tokenInWebhookUrl,
  WEBHOOK_CONFIGURATION_NAME,
  type WebhookConfigurationView,
} from "../core/onboard-plan.ts";
import type { OperatorCluster } from "../factory.ts";
import { Problem } from "../ui.ts";

export type RegisteredWebhook =
  | {
      readonly mode: "url";
      readonly configuration: WebhookConfigurationView;
      readonly url: string;
      readonly token: string;
    }
  | {
      /** The token travels in a header from kube-apiserver's admission kubeconfig. */
      readonly mode: "header";
      readonly configuration: WebhookConfigurationView;
      readonly url: string;
    };

/**
 * This cluster's ecr-anywhere webhook configuration, checked to belong to `clusterId`, so a wrong
 * `--context` never rotates or removes another cluster's registration.
 */
export async function registeredWebhook(
  cluster: Pick<OperatorCluster, "config" | "webhookConfigurations">,
  clusterId: string,
): Promise<RegisteredWebhook | undefined> {
  const configuration = (await cluster.webhookConfigurations()).find(
    (item) => item.name === WEBHOOK_CONFIGURATION_NAME,
  );
  if (!configuration) return undefined;
  for (const webhook of configuration.webhooks) {
    const url = webhook.clientConfig.url;
    const token = tokenInWebhookUrl(url, clusterId);
    if (token && url) return { mode: "url", configuration, url, token };
    if (url && isHeaderModeUrl(url, clusterId)) return { mode: "header", configuration, url };
  }
  throw new Problem(
    `the MutatingWebhookConfiguration ${WEBHOOK_CONFIGURATION_NAME} in context ${cluster.config.currentContext} is not cluster ${clusterId}'s: check --context`,
  );
}

/**
 * The refresher's namespace, ServiceAccount and RBAC, and, where the API server has it (1.30+),
 * the ValidatingAdmissionPolicy that narrows its Secret writes to managed ones.
 */
export async function refresherObjects(
  options: OnboardInputs & {
    readonly labelPrefix?: string | undefined;
    readonly secretPolicy: boolean;
  },
): Promise<KubernetesObject[]> {
  const labelPrefix = options.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const rbac = await refresherRbac({
    namespaces: options.namespaces,
    serviceAccountNamespaces: options.serviceAccounts ? options.namespaces : [],
    labelPrefix,
  });
  const policy = options.secretPolicy ? await refresherSecretPolicy({ labelPrefix }) : [];
  return [refresherNamespaceObject(), ...rbac, ...policy].map((object) =>
    withManagedBy(object),
  ) as KubernetesObject[];
}

function withManagedBy(object: Record<string, unknown>): Record<string, unknown> {
  const metadata = object.metadata as { labels?: Record<string, string> };
  return {
    ...object,
    metadata: { ...metadata, labels: { ...metadata.labels, ...MANAGED_BY_LABEL } },
  };
}

/** The whole configuration, every time: a partial server-side apply would drop the fields it omits. */
export async function ourWebhookConfiguration(
  url: string,
  caPem: string | undefined,
  labelPrefix: string,
): Promise<KubernetesObject> {
  return withManagedBy(
    await webhookConfiguration({
      name: WEBHOOK_CONFIGURATION_NAME,
      webhookUrl: url,
      ...(caPem ? { caPem } : {}),
      labelPrefix,
    }),
  ) as KubernetesObject;
}

export function webhookConfigurationRef(name: string): KubernetesObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
  };
}
