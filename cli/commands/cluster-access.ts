/** Shared by the commands that act on an onboarded cluster: finding its webhook configuration safely. */
import type { UserCluster } from "../adapters/user-cluster.ts";
import {
  tokenInWebhookUrl,
  WEBHOOK_CONFIGURATION_NAME,
  type WebhookConfigurationView,
} from "../core/onboard-plan.ts";
import { Problem } from "../ui.ts";

export interface RegisteredWebhook {
  readonly configuration: WebhookConfigurationView;
  readonly url: string;
  readonly token: string;
}

/**
 * This cluster's ecr-anywhere webhook configuration, checked to belong to `clusterId`, so a wrong
 * `--context` never rotates or removes another cluster's registration.
 */
export async function registeredWebhook(
  cluster: UserCluster,
  clusterId: string,
): Promise<RegisteredWebhook | undefined> {
  const configuration = (await cluster.webhookConfigurations()).find(
    (item) => item.name === WEBHOOK_CONFIGURATION_NAME,
  );
  if (!configuration) return undefined;
  for (const webhook of configuration.webhooks) {
    const token = tokenInWebhookUrl(webhook.clientConfig.url, clusterId);
    if (token && webhook.clientConfig.url)
      return { configuration, url: webhook.clientConfig.url, token };
  }
  throw new Problem(
    `the MutatingWebhookConfiguration ${WEBHOOK_CONFIGURATION_NAME} in context ${cluster.config.currentContext} is not cluster ${clusterId}'s: check --context`,
  );
}
