/**
 * Names shared by the webhook, the refresher and the onboarding CLI (see docs/contract.md).
 * Defaults match the original ECR Anywhere Helm release so clusters migrate without relabelling.
 */
export const DEFAULT_LABEL_PREFIX = "ecr-anywhere.centml.ai";
export const DOCKER_CONFIG_JSON_TYPE = "kubernetes.io/dockerconfigjson";
export const DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson";
export const METRICS_NAMESPACE = "EcrAnywhere";
export const DEFAULT_CLUSTER_RECORD_PREFIX = "ecr-anywhere/clusters/";

export interface ContractNames {
  /** The prefix every name below shares (a DNS subdomain). */
  readonly labelPrefix: string;
  /** Namespace label (value `enabled`) that opts a namespace in. */
  readonly namespaceLabel: string;
  /** Secret label (value `true`) that marks a Secret as managed. */
  readonly managedLabel: string;
  readonly expiresAtAnnotation: string;
  readonly updatedAtAnnotation: string;
  readonly markedForUpdateAtAnnotation: string;
  readonly registriesAnnotation: string;
}

export const NAMESPACE_ENABLED_VALUE = "enabled";
export const MANAGED_VALUE = "true";

// A DNS subdomain, as Kubernetes requires for the prefix of a qualified label name.
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function contractNames(prefix: string = DEFAULT_LABEL_PREFIX): ContractNames {
  if (!DNS_SUBDOMAIN.test(prefix)) {
    throw new Error(
      `label prefix "${prefix}" is not a DNS subdomain (for example ${DEFAULT_LABEL_PREFIX})`,
    );
  }
  return {
    labelPrefix: prefix,
    namespaceLabel: `${prefix}/namespace`,
    managedLabel: `${prefix}/managed`,
    expiresAtAnnotation: `${prefix}/expires_at`,
    updatedAtAnnotation: `${prefix}/updated_at`,
    markedForUpdateAtAnnotation: `${prefix}/marked_for_update_at`,
    registriesAnnotation: `${prefix}/registries`,
  };
}
