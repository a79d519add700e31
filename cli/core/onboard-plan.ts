/**
 * What `onboard` applies and writes, decided from its inputs and what it found: the refresher's
 * objects, the webhook URL and token, the refresher's kubeconfig, the cluster record, the access it
 * needs, and webhooks it must not sit beside. Pure: the commands do the I/O.
 */
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { parseWebhookCaller } from "../../functions/core/auth.ts";
import { type ClusterRecord, parseClusterRecord } from "../../functions/core/cluster-record.ts";
import { type ContractNames, NAMESPACE_ENABLED_VALUE } from "../../functions/core/contract.ts";
import { ECR } from "../../functions/core/ecr-kind.ts";
import {
  kubeconfigTarget,
  needsRenewal,
  serviceAccountToken,
} from "../../functions/core/kubeconfig.ts";
import {
  type EcrRegistry,
  type Partition,
  parseEcrHost,
  partitionProblem,
} from "../../functions/core/registries.ts";
import { REFRESHER_NAMESPACE, REFRESHER_SERVICE_ACCOUNT } from "../../k8s/refresher-identity.ts";
import {
  applyChange,
  type ClusterPlan,
  type ObjectRef,
  type PlannedChange,
  recordRef,
} from "./cluster-plan.ts";

/** Server-side apply field manager: `kubectl get --show-managed-fields` shows what the CLI owns. */
export const FIELD_MANAGER = "ecr-anywhere";
export const WEBHOOK_CONFIGURATION_NAME = "ecr-anywhere";
// The refresher's identity is the k8s/ objects' own: named there once.
export { REFRESHER_NAMESPACE, REFRESHER_SERVICE_ACCOUNT } from "../../k8s/refresher-identity.ts";
/** The refresher renews its token after half of this (docs/contract.md), so a week survives a long outage. */
export const REFRESHER_TOKEN_SECONDS = 7 * 24 * 3600;
/** Marks objects the CLI created, so offboard removes only those. */
export const MANAGED_BY_LABEL = { "app.kubernetes.io/managed-by": FIELD_MANAGER } as const;

export interface OnboardInputs {
  readonly clusterId: string;
  readonly registries: readonly string[];
  readonly namespaces: readonly string[];
  readonly roleArn?: string | undefined;
  readonly repositories?: readonly string[] | undefined;
  readonly allowedSourceCidrs?: readonly string[] | undefined;
  readonly ensureSecret?: string | undefined;
  /** Tokens narrowed by `repositories` may import through pull-through cache rules. */
  readonly pullThroughCache?: boolean | undefined;
  readonly serviceAccounts?: readonly string[] | undefined;
}

export interface WebhookToken {
  readonly token: string;
  readonly sha256: string;
}

/** A webhook token from 32 random bytes (256 bits), and the hash the record keeps. */
export function webhookTokenFrom(randomBytes: Uint8Array): WebhookToken {
  if (randomBytes.length < 32) throw new Error("a webhook token needs at least 32 random bytes");
  const token = Buffer.from(randomBytes).toString("base64url");
  return { token, sha256: createHash("sha256").update(token).digest("hex") };
}

/** A token kept in a file (`--token-file`): 32 random bytes as base64url and nothing else. */
export function parseWebhookToken(text: string): WebhookToken | undefined {
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  return { token, sha256: createHash("sha256").update(token).digest("hex") };
}

/**
 * `<base>/v1/clusters/<id>/<token>`, or without the token when it travels in a header (the stack's
 * `WebhookUrl` output ends with a slash).
 */
export function webhookUrl(base: string, clusterId: string, token: string | undefined): string {
  const url = `${base.replace(/\/+$/, "")}/v1/clusters/${clusterId}`;
  return token === undefined ? url : `${url}/${token}`;
}

/** The token in a webhook configuration's URL, when it is this cluster's. */
export function tokenInWebhookUrl(url: string | undefined, clusterId: string): string | undefined {
  if (!url) return undefined;
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const caller = parseWebhookCaller(path.replace(/^.*(?=\/v1\/clusters\/)/, ""), undefined);
  return caller?.clusterId === clusterId ? caller.token : undefined;
}

/** True when `url` is this cluster's webhook URL without a token: header authentication. */
export function isHeaderModeUrl(url: string | undefined, clusterId: string): boolean {
  if (!url) return false;
  try {
    return new URL(url).pathname.replace(/\/+$/, "").endsWith(`/v1/clusters/${clusterId}`);
  } catch {
    return false;
  }
}

export function baseOfWebhookUrl(url: string): string {
  return url.replace(/\/v1\/clusters\/[^/]+(\/[^/]+)?$/, "");
}

/** The refresher's kubeconfig: inline token and CA only, as the record's checks require. */
export function refresherKubeconfig(options: {
  readonly clusterId: string;
  readonly server: string;
  readonly caData: string;
  readonly token: string;
}): string {
  const user = `${REFRESHER_NAMESPACE}:${REFRESHER_SERVICE_ACCOUNT}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: options.clusterId,
        cluster: { server: options.server, "certificate-authority-data": options.caData },
      },
    ],
    users: [{ name: user, user: { token: options.token } }],
    contexts: [{ name: options.clusterId, context: { cluster: options.clusterId, user } }],
    "current-context": options.clusterId,
  });
}

/**
 * An existing refresher kubeconfig is kept (so a re-run changes nothing) while it points at the
 * same server and CA and holds the refresher's token with more than half its life left.
 */
export function keepRefresherKubeconfig(
  existing: string | undefined,
  wanted: { readonly server: string; readonly caData: string },
  nowMs: number,
): boolean {
  if (!existing) return false;
  const target = kubeconfigTarget(existing);
  const token = serviceAccountToken(existing);
  return (
    target?.server === wanted.server &&
    target.caData === wanted.caData &&
    token?.namespace === REFRESHER_NAMESPACE &&
    token.name === REFRESHER_SERVICE_ACCOUNT &&
    !needsRenewal(token, nowMs)
  );
}

/**
 * The cluster record (both parts), checked with the functions' own schemas and rules so a bad one
 * is never written.
 */
export function buildClusterRecord(
  inputs: OnboardInputs,
  kubeconfig: string,
  tokenHashes: readonly string[],
): ClusterRecord {
  const record = {
    clusterId: inputs.clusterId,
    kubeconfig,
    webhookTokenSha256: [...tokenHashes],
    registries: [...inputs.registries],
    ...(inputs.roleArn ? { roleArn: inputs.roleArn } : {}),
    ...(inputs.repositories ? { repositories: [...inputs.repositories] } : {}),
    ...(inputs.pullThroughCache ? { pullThroughCache: true } : {}),
    ...(inputs.allowedSourceCidrs ? { allowedSourceCidrs: [...inputs.allowedSourceCidrs] } : {}),
    ...(inputs.ensureSecret
      ? {
          ensure: {
            secretName: inputs.ensureSecret,
            namespaces: [...inputs.namespaces],
            ...(inputs.serviceAccounts ? { serviceAccounts: [...inputs.serviceAccounts] } : {}),
          },
        }
      : {}),
  };
  const parsed = parseClusterRecord(record);
  if (!parsed.ok) throw new Error(`the cluster record would be invalid: ${parsed.error}`);
  return parsed.value;
}

/**
 * The record to write over what is stored: the refresher's own state (its open failures) is not
 * onboard's to reset, so a re-run keeps it.
 */
export function withRefresherState(
  record: ClusterRecord,
  stored: ClusterRecord | undefined,
): ClusterRecord {
  const kept = stored?.refresher;
  return kept === undefined ? record : { ...record, refresher: kept };
}

/**
 * Registries a stack cannot serve: the stack's partition is its record key's (`arn:<partition>:kms:`),
 * and ECR tokens never cross partitions.
 */
export function registryPartitionProblems(
  registries: readonly string[],
  recordKeyArn: string,
): string[] {
  const partition = /^arn:(aws|aws-cn|aws-us-gov):/.exec(recordKeyArn)?.[1] as
    | Partition
    | undefined;
  if (!partition) return [];
  return registries.flatMap((host) => partitionProblem(host, partition) ?? []);
}

/**
 * Why `--registries` and `--repositories` are not all within the stack's `allowedRegistries`: the
 * stack grants pulls per registry, as every repository of its account and region
 * (`arn:<partition>:ecr:<region>:<account>:repository/*`, functions/core/ecr-kind.ts), and ECR
 * Public only when listed. So exactly as its IAM does: a FIPS or dual-stack host is within its
 * ordinary host's grant, and a repository ARN within its registry's. No wildcards: the stack's
 * list names hosts. Tokens for anything outside could never pull it.
 */
export function registriesOutsideStack(
  inputs: Pick<OnboardInputs, "registries" | "repositories">,
  allowedRegistries: readonly string[],
): string[] {
  const granted = new Set(
    allowedRegistries.flatMap((host) => {
      const registry = parseEcrHost(host);
      return registry ? [grantKey(registry)] : [];
    }),
  );
  const stack = `the stack's allowedRegistries (${allowedRegistries.join(", ")})`;
  const hosts = inputs.registries.flatMap((host) => {
    const registry = parseEcrHost(host);
    return registry && !granted.has(grantKey(registry))
      ? [`--registries: ${host} is outside ${stack}`]
      : [];
  });
  const repositories = (inputs.repositories ?? []).flatMap((arn) => {
    const [, partition, , region, accountId] = arn.split(":");
    return granted.has(`${ECR.id}|${partition}|${region}|${accountId}`)
      ? []
      : [`--repositories: ${arn} is in a registry outside ${stack}`];
  });
  return [...hosts, ...repositories];
}

/** What the stack's IAM grants a registry by: its kind, partition, region and account. */
function grantKey(registry: EcrRegistry): string {
  return `${registry.kind}|${registry.partition}|${registry.region}|${registry.accountId}`;
}

/** Key-order-independent JSON, to tell whether a record write would change anything. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, item: unknown) =>
    item && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}

/** A server-side apply of only the enabling label: other labels stay with their owners. */
export function enabledNamespaceLabel(
  namespace: string,
  names: ContractNames,
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: namespace, labels: { [names.namespaceLabel]: NAMESPACE_ENABLED_VALUE } },
  };
}

export interface AccessCheck {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
}

/**
 * Everything onboard does in the cluster, as access reviews to ask before changing anything. A
 * server-side apply is a PATCH that creates what is missing, so it needs both verbs.
 */
export function onboardAccess(
  inputs: OnboardInputs,
  replaceExisting: boolean,
  secretPolicy = true,
): AccessCheck[] {
  const rbac = "rbac.authorization.k8s.io";
  const admission = "admissionregistration.k8s.io";
  const applied: Omit<AccessCheck, "verb">[] = [
    { group: "", resource: "namespaces" },
    { group: "", resource: "serviceaccounts", namespace: REFRESHER_NAMESPACE },
    { group: rbac, resource: "clusterroles" },
    { group: rbac, resource: "clusterrolebindings" },
    { group: rbac, resource: "roles", namespace: REFRESHER_NAMESPACE },
    { group: rbac, resource: "rolebindings", namespace: REFRESHER_NAMESPACE },
    { group: admission, resource: "mutatingwebhookconfigurations" },
    // Only where the API server has them (1.30+): asking below that would refuse a fine identity.
    ...(secretPolicy
      ? [
          { group: admission, resource: "validatingadmissionpolicies" },
          { group: admission, resource: "validatingadmissionpolicybindings" },
        ]
      : []),
    ...inputs.namespaces.map((namespace) => ({ group: rbac, resource: "rolebindings", namespace })),
  ];
  const checks: AccessCheck[] = applied.flatMap((target) => [
    { verb: "patch", ...target },
    { verb: "create", ...target },
  ]);
  checks.push(
    { verb: "list", group: admission, resource: "mutatingwebhookconfigurations" },
    {
      verb: "create",
      group: "",
      resource: "serviceaccounts",
      subresource: "token",
      namespace: REFRESHER_NAMESPACE,
    },
    ...inputs.namespaces.map((namespace) => ({
      verb: "create",
      group: "",
      resource: "secrets",
      namespace,
    })),
  );
  if (replaceExisting)
    checks.push({ verb: "delete", group: admission, resource: "mutatingwebhookconfigurations" });
  return checks;
}

export function describeAccess(check: AccessCheck): string {
  const resource = [check.resource, check.subresource].filter(Boolean).join("/");
  const qualified = check.group ? `${resource}.${check.group}` : resource;
  return `${check.verb} ${qualified} ${check.namespace ? `in namespace ${check.namespace}` : "(cluster-wide)"}`;
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string }[];
}

export interface WebhookConfigurationView {
  readonly name: string;
  readonly webhooks: readonly {
    readonly name: string;
    readonly clientConfig: {
      readonly url?: string;
      readonly caBundle?: string;
      readonly service?: { readonly namespace: string; readonly name: string };
    };
    readonly namespaceSelector?: LabelSelector;
    readonly objectSelector?: LabelSelector;
  }[];
}

export interface ConflictingWebhook {
  readonly configuration: string;
  readonly webhook: string;
  /** `<namespace>/<name>` of the in-cluster Service it calls. */
  readonly service: string;
}

/**
 * Webhooks that call an in-cluster Service for the same labels (the original ECR Anywhere's Helm
 * release). Beside ours, two failurePolicy Fail webhooks would mean either one being down blocks
 * every managed write.
 */
export function conflictingWebhooks(
  configurations: readonly WebhookConfigurationView[],
  names: ContractNames,
): ConflictingWebhook[] {
  const selects = (selector: LabelSelector | undefined, key: string) =>
    selector?.matchLabels?.[key] !== undefined ||
    (selector?.matchExpressions ?? []).some((expression) => expression.key === key);
  return configurations.flatMap((configuration) =>
    configuration.name === WEBHOOK_CONFIGURATION_NAME
      ? []
      : configuration.webhooks
          .filter(
            (webhook) =>
              webhook.clientConfig.service !== undefined &&
              (selects(webhook.objectSelector, names.managedLabel) ||
                selects(webhook.namespaceSelector, names.namespaceLabel)),
          )
          .map((webhook) => ({
            configuration: configuration.name,
            webhook: webhook.name,
            service: `${webhook.clientConfig.service?.namespace}/${webhook.clientConfig.service?.name}`,
          })),
  );
}

/**
 * The run's steps. The cluster's plan (cli/core/cluster-plan.ts) groups its changes by these, and
 * a dry run names them for what it does: it renders, it never applies.
 */
export const ONBOARD_STEPS = {
  check: "Check access, inputs and AWS before changing anything",
  plan: "Plan: read what the cluster has, decide what to create, change or keep",
  refresher: "Apply the refresher's namespace, ServiceAccount and RBAC",
  credentials: "Refresher credentials (bound ServiceAccount token)",
  record: "Webhook token and cluster record",
  webhook: "Webhook configuration and namespace labels",
  verify: "Verify: a dry-run managed Secret through the API server, and the refresher's access",
  refresherCheck: "Verify: the deployed refresher refreshes the cluster from AWS",
} as const;

export type OnboardStep = keyof typeof ONBOARD_STEPS;

export const DRY_RUN_STEPS: Record<OnboardStep, string> = {
  check: "Check the inputs (a dry run changes nothing)",
  plan: "Plan the files to render",
  refresher: "Render the refresher's namespace, ServiceAccount and RBAC",
  credentials: "Refresher credentials (a placeholder for the token)",
  record: "Webhook token and cluster record, rendered",
  webhook: "Render the webhook configuration and namespace labels",
  verify: "Verify (skipped: nothing was changed)",
  refresherCheck: "Refresher check (skipped: nothing was changed)",
};

/** A wanted object beside what the cluster holds under its name. */
export interface FoundObject {
  readonly wanted: KubernetesObject;
  readonly existing: KubernetesObject | undefined;
}

/** What onboard read before it plans: the objects, the webhooks it replaces, the record. */
export interface OnboardFindings {
  readonly clusterId: string;
  readonly context: string;
  readonly records: string;
  readonly refresher: readonly FoundObject[];
  /** Our webhook configuration first, then the namespace labels. */
  readonly webhook: readonly FoundObject[];
  /** In-cluster webhooks for the same labels that `--replace-existing` removes. */
  readonly replaced: readonly ObjectRef[];
  /** The stored record: none, offboarded, as this run would write it, or different. */
  readonly record: "absent" | "deleted" | "same" | "differs";
}

/**
 * What onboard changes, in order: the refresher's objects, the record, then the old in-cluster
 * webhook right before ours (beside ours it would block writes whenever it is down; removed any
 * earlier, a failed step would leave the cluster with no webhook), our webhook and the labels.
 */
export function planOnboard(found: OnboardFindings): ClusterPlan {
  const refresher = found.refresher.map(({ wanted, existing }) =>
    applyChange(wanted, existing, ONBOARD_STEPS.refresher, refresherReason(wanted)),
  );
  const replaced = found.replaced.map(
    (ref): PlannedChange => ({
      action: "remove",
      ref,
      step: ONBOARD_STEPS.webhook,
      reason:
        "an in-cluster webhook for the same labels (--replace-existing), removed right before ours",
    }),
  );
  const webhook = found.webhook.map(({ wanted, existing }) =>
    applyChange(wanted, existing, ONBOARD_STEPS.webhook, webhookReason(wanted)),
  );
  return {
    clusterId: found.clusterId,
    context: found.context,
    changes: [...refresher, recordChange(found), ...replaced, ...webhook],
  };
}

function recordChange(found: OnboardFindings): PlannedChange {
  const ref = recordRef(found.records, found.clusterId);
  const step = ONBOARD_STEPS.record;
  switch (found.record) {
    case "absent":
      return {
        action: "create",
        ref,
        step,
        reason: "the webhook and the refresher look the cluster up here",
      };
    case "deleted":
      return {
        action: "update",
        ref,
        step,
        reason: "restored: it was offboarded within its recovery window",
      };
    case "same":
      return { action: "keep", ref, step, reason: "stored as this run would write it" };
    case "differs":
      return {
        action: "update",
        ref,
        step,
        reason: "written where it differs; the refresher's own state is kept",
      };
  }
}

function refresherReason(object: KubernetesObject): string {
  if (object.kind === "Namespace") return "where the refresher's ServiceAccount lives";
  if (object.kind?.startsWith("ValidatingAdmissionPolicy"))
    return "narrows the refresher's Secret writes to managed dockerconfigjson Secrets";
  return "the refresher's least access";
}

function webhookReason(object: KubernetesObject): string {
  return object.kind === "Namespace"
    ? "the enabling label: the webhook handles managed Secrets here"
    : "registers the webhook, last: once the record exists, so it never refuses a write for lack of it";
}
