/**
 * The objects the CLI puts in a cluster, shared by its commands: the refresher's objects, the
 * webhook configuration, and finding an onboarded cluster's registration safely.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { DEFAULT_LABEL_PREFIX } from "../../functions/core/contract.ts";
import { refresherNamespace, refresherRbac } from "../../k8s/refresher-rbac.ts";
import { refresherSecretPolicy } from "../../k8s/refresher-secret-policy.ts";
import { webhookConfiguration } from "../../k8s/webhook-configuration.ts";
import {
  isHeaderModeUrl,
  MANAGED_BY_LABEL,
  type OnboardInputs,
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
export function refresherObjects(
  options: OnboardInputs & {
    readonly labelPrefix?: string | undefined;
    readonly secretPolicy: boolean;
  },
): KubernetesObject[] {
  const labelPrefix = options.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const rbac = refresherRbac({
    namespaces: options.namespaces,
    serviceAccountNamespaces: options.serviceAccounts ? options.namespaces : [],
    labelPrefix,
  });
  const policy = options.secretPolicy ? refresherSecretPolicy({ labelPrefix }) : [];
  return [refresherNamespace(), ...rbac, ...policy].map(withManagedBy);
}

/** The same object, labelled as the CLI's (offboard removes only what carries the label). */
function withManagedBy<T extends KubernetesObject>(object: T): T {
  const metadata = object.metadata ?? {};
  return {
    ...object,
    metadata: { ...metadata, labels: { ...metadata.labels, ...MANAGED_BY_LABEL } },
  };
}

/** The whole configuration, every time: a partial server-side apply would drop the fields it omits. */
export function ourWebhookConfiguration(
  url: string,
  caPem: string | undefined,
  labelPrefix: string,
): KubernetesObject {
  return withManagedBy(
    webhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, webhookUrl: url, caPem, labelPrefix }),
  );
}

export function webhookConfigurationRef(name: string): KubernetesObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
  };
}
