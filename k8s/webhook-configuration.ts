/**
 * Registers the ecr-anywhere webhook Lambda with a cluster's API server, and the kubeconfig the
 * API server's admission configuration names when the token travels in a header.
 */
import type { V1MutatingWebhookConfiguration } from "@kubernetes/client-node";
import {
  contractNames,
  DEFAULT_LABEL_PREFIX,
  MANAGED_VALUE,
  NAMESPACE_ENABLED_VALUE,
} from "../functions/core/contract.ts";
import { ECR_ANYWHERE_NAME_LABEL } from "./refresher-identity.ts";

export interface WebhookConfigurationOptions {
  /** `https://<host>/v1/clusters/<cluster-id>/<token>` */
  readonly webhookUrl: string;
  /** PEM of the CA that signed the webhook's certificate; omit for a Lambda function URL. */
  readonly caPem?: string | undefined;
  readonly labelPrefix?: string | undefined;
  /** @default ecr-anywhere */
  readonly name?: string | undefined;
}

export function webhookConfiguration(
  options: WebhookConfigurationOptions,
): V1MutatingWebhookConfiguration {
  const names = contractNames(options.labelPrefix ?? DEFAULT_LABEL_PREFIX);
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: {
      name: options.name ?? "ecr-anywhere",
      labels: { ...ECR_ANYWHERE_NAME_LABEL, "app.kubernetes.io/component": "webhook" },
    },
    webhooks: [
      {
        name: `secrets.${names.labelPrefix}`,
        admissionReviewVersions: ["v1"],
        // The webhook changes nothing but the object under admission, so dry runs are safe.
        sideEffects: "None",
        // A managed Secret must not be stored without fresh credentials: fail closed.
        failurePolicy: "Fail",
        timeoutSeconds: 10,
        matchPolicy: "Equivalent",
        reinvocationPolicy: "Never",
        // No caBundle for a Lambda function URL: it serves a publicly trusted certificate.
        clientConfig: {
          url: options.webhookUrl,
          ...(options.caPem ? { caBundle: Buffer.from(options.caPem).toString("base64") } : {}),
        },
        rules: [
          {
            apiGroups: [""],
            apiVersions: ["v1"],
            operations: ["CREATE", "UPDATE"],
            resources: ["secrets"],
            scope: "Namespaced",
          },
        ],
        namespaceSelector: { matchLabels: { [names.namespaceLabel]: NAMESPACE_ENABLED_VALUE } },
        objectSelector: { matchLabels: { [names.managedLabel]: MANAGED_VALUE } },
      },
    ],
  };
}

/**
 * The kubeconfig the admission configuration names (cli/core/admission-config.ts): one user per
 * webhook host, named as kube-apiserver matches them (the host, with the port unless it is 443).
 */
export function webhookCredentialsKubeconfig(
  entries: readonly { readonly webhookUrl: string; readonly token: string }[],
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Config",
    users: entries.map(({ webhookUrl, token }) => {
      const url = new URL(webhookUrl);
      return { name: url.port && url.port !== "443" ? url.host : url.hostname, user: { token } };
    }),
  };
}
