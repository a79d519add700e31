/**
 * Names shared by the webhook, the refresher and the onboarding CLI (see docs/contract.md).
 * Defaults match the original ECR Anywhere Helm release so clusters migrate without relabelling.
 */
export const DEFAULT_LABEL_PREFIX = "ecr-anywhere.centml.ai";
export const DOCKER_CONFIG_JSON_TYPE = "kubernetes.io/dockerconfigjson";
export const DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson";
export const METRICS_NAMESPACE = "EcrAnywhere";
/**
 * Cluster records live in two DynamoDB tables named from one "records name" N (docs/contract.md,
 * "Cluster records, layout 2"): `<N>-webhook` (what the webhook needs, nothing secret) and
 * `<N>-refresher` (the refresher's kubeconfig, sealed, and its state).
 */
export const DEFAULT_RECORDS_NAME = "ecr-anywhere-clusters";
const RECORDS_NAME = /^[A-Za-z0-9_.-]{1,200}$/;

/** A records name that makes valid table names (DynamoDB: 3 to 255 of `A-Za-z0-9_.-`). */
export function isRecordsName(value: string): boolean {
  return RECORDS_NAME.test(value);
}

export function recordTables(recordsName: string): {
  readonly webhook: string;
  readonly refresher: string;
} {
  return { webhook: `${recordsName}-webhook`, refresher: `${recordsName}-refresher` };
}

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

/** A DNS-1123 subdomain: a label prefix, a ServiceAccount or a Secret name. */
export function isDns1123Subdomain(value: string): boolean {
  return DNS_SUBDOMAIN.test(value);
}

export function contractNames(prefix: string = DEFAULT_LABEL_PREFIX): ContractNames {
  if (!isDns1123Subdomain(prefix)) {
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
