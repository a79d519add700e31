/**
 * What `onboard --dry-run` writes for GitOps, file by file: what each file is, whether it holds a
 * secret, and where and when it is applied. The order is the one that never blocks a write:
 *
 *   phase 1  namespaces.yaml  partial Namespaces: the enabling label, by server-side apply
 *            rbac.yaml        the refresher's namespace, ServiceAccount and RBAC
 *   (record) put-record       the record's two items, once the refresher's token is filled in
 *   phase 2  webhook.yaml     the MutatingWebhookConfiguration, last: before the record exists,
 *                             the webhook would refuse every managed Secret write
 *
 * Argo CD applies one sync in `argocd.argoproj.io/sync-wave` order, so the waves carry it (wave 3
 * is put-record, which runs outside Argo CD); Flux has no waves: two Kustomizations, the second
 * with `dependsOn`, applied after put-record (docs/onboard-gitops.md).
 */
import { HEADER_AUTH_ADMISSION_MARKER } from "./admission-config.ts";
import { REFRESHER_SERVICE_ACCOUNT } from "./onboard-plan.ts";

export const NAMESPACES_FILE = "namespaces.yaml";
export const RBAC_FILE = "rbac.yaml";
export const WEBHOOK_FILE = "webhook.yaml";
/** Files for the API server's hosts (header authentication), apart from what goes to the cluster. */
export const API_SERVER_DIR = "api-server";
export const ADMISSION_FILE = "admission.yaml";
export const CREDENTIALS_FILE = "webhook-credentials.kubeconfig";

export const SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave";
export const SYNC_WAVES = { namespaces: "1", rbac: "2", record: "3", webhook: "4" } as const;

/**
 * On the partial Namespaces: the GitOps tool applies them with server-side apply and never deletes
 * the namespace (it is the user's; only the label is ours).
 */
export const PARTIAL_NAMESPACE_ANNOTATIONS = {
  "argocd.argoproj.io/sync-options": "ServerSideApply=true,Prune=false,Delete=false",
  "kustomize.toolkit.fluxcd.io/prune": "disabled",
} as const;

/** The objects of one cluster file with the annotations that carry its place in the order. */
export function withSyncWave<T extends { metadata?: { annotations?: Record<string, string> } }>(
  object: T,
  wave: string,
  extra: Readonly<Record<string, string>> = {},
): T {
  const metadata = object.metadata ?? {};
  return {
    ...object,
    metadata: {
      ...metadata,
      annotations: { ...metadata.annotations, [SYNC_WAVE_ANNOTATION]: wave, ...extra },
    },
  };
}

export interface HeaderFacts {
  readonly clusterId: string;
  readonly webhookAuth: "url" | "header";
  readonly admissionKubeconfigPath: string;
  /** The admission configuration was merged into the API server's own (`--admission-config`). */
  readonly mergedAdmission: boolean;
  readonly secretPolicyMinimumMinor: number;
}

const APPLY = "kubectl apply --server-side --field-manager=ecr-anywhere -f";

/** The header comment of each YAML file: what it is, whether it is secret, where and when it goes. */
export function fileHeaders(facts: HeaderFacts): Record<string, string[]> {
  const header = facts.webhookAuth === "header";
  return {
    [NAMESPACES_FILE]: [
      `ecr-anywhere, cluster ${facts.clusterId}: the label that enables each namespace. No secret: safe to commit.`,
      `Phase 1, Argo CD sync wave ${SYNC_WAVES.namespaces}. Partial Namespace objects (name and label only) for server-side apply:`,
      `  ${APPLY} ${NAMESPACES_FILE}`,
      "The namespaces stay yours: the annotations tell Argo CD and Flux never to prune or delete them.",
    ],
    [RBAC_FILE]: [
      `ecr-anywhere, cluster ${facts.clusterId}: the refresher's namespace, ServiceAccount and RBAC. No secret: safe to commit.`,
      `Phase 1, Argo CD sync wave ${SYNC_WAVES.rbac}: before put-record (the record holds a token for ${REFRESHER_SERVICE_ACCOUNT}).`,
      `  ${APPLY} ${RBAC_FILE}`,
      `The ValidatingAdmissionPolicy and its binding need Kubernetes 1.${facts.secretPolicyMinimumMinor}+: on an older API server leave those two objects out.`,
    ],
    [WEBHOOK_FILE]: [
      `ecr-anywhere, cluster ${facts.clusterId}: the MutatingWebhookConfiguration.`,
      header
        ? `No secret (the token is in ${API_SERVER_DIR}/${CREDENTIALS_FILE}, on the API server's hosts): safe to commit.`
        : "SECRET: its URL carries the webhook token. Commit it only encrypted (e.g. SOPS), or keep it out of Git.",
      `Phase 2, Argo CD sync wave ${SYNC_WAVES.webhook}: apply only once put-record has stored the record${header ? " and every API server runs with the admission configuration" : ""};`,
      "before that, every managed Secret write in the enabled namespaces would be refused.",
      `  ${APPLY} ${WEBHOOK_FILE}`,
    ],
    [`${API_SERVER_DIR}/${ADMISSION_FILE}`]: [
      `${HEADER_AUTH_ADMISSION_MARKER}, cluster ${facts.clusterId}: kube-apiserver's --admission-control-config-file. No secret. Not a cluster object: keep it out of the folder the GitOps tool applies.`,
      facts.mergedAdmission
        ? "Merged into the API server's own AdmissionConfiguration: only MutatingAdmissionWebhook's kubeConfigFile was set; every other plugin is kept. It takes that file's place."
        : "Only the webhook plugin: if the API server already has an --admission-control-config-file (RKE2, CIS-hardened k3s: PodSecurity), render with --admission-config <that file> instead, or its plugins would be dropped.",
      "Install on every API server host, restart kube-apiserver, then apply phase 2 (docs/onboard-platforms.md).",
    ],
    [`${API_SERVER_DIR}/${CREDENTIALS_FILE}`]: [
      `ecr-anywhere, cluster ${facts.clusterId}: the webhook token for kube-apiserver. SECRET: never commit it.`,
      `Install on every API server host at ${facts.admissionKubeconfigPath} (mode 0600, owned by root), before phase 2.`,
    ],
  };
}

/** `content` with its header as YAML comments, and nothing else changed. */
export function withHeader(lines: readonly string[], content: string): string {
  return `${lines.map((line) => `# ${line}`).join("\n")}\n${content}`;
}
