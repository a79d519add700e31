/**
 * `ecr-anywhere offboard`: removes what onboard added, in the order that never blocks a write:
 * the webhook first, then labels and RBAC, then the record (both items marked deleted, so the id is
 * unknown at once; DynamoDB removes them when the recovery window ends, and onboard restores them
 * before that). The users' Secrets stay as they are.
 */
import { Command } from "@commander-js/extra-typings";
import type { KubernetesObject } from "@kubernetes/client-node";
import { NAMESPACE_ENABLED_VALUE, recordTables } from "../../functions/core/contract.ts";
import {
  refresherRbac,
  refresherSecretPolicy,
  refresherServiceAccountsRole,
  SECRET_POLICY_MINIMUM_MINOR,
} from "../../k8s/templates.ts";
import { parseClusterId, parseRecoveryDays } from "../core/inputs.ts";
import {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  REFRESHER_NAMESPACE,
  WEBHOOK_CONFIGURATION_NAME,
} from "../core/onboard-plan.ts";
import type { Factory, OperatorCluster } from "../factory.ts";
import { checked } from "../flags.ts";
import { Problem, type Step } from "../ui.ts";
import { registeredWebhook, webhookConfigurationRef } from "./cluster-objects.ts";

export interface OffboardOptions {
  readonly clusterId: string;
  readonly recoveryDays: number;
  readonly yes: boolean;
  /** The cluster is gone (or unreachable for good): mark only its record deleted. */
  readonly recordOnly: boolean;
}

export function newOffboardCommand(factory: () => Factory) {
  return new Command("offboard")
    .description(
      "remove a cluster's webhook configuration, RBAC and record; its Secrets are left alone",
    )
    .argument("<cluster-id>", "the cluster", checked(parseClusterId))
    .option("-y, --yes", "do not ask for confirmation", false)
    .option(
      "--record-only",
      "the cluster no longer exists: leave it alone and only schedule its record for deletion",
      false,
    )
    .option(
      "--recovery-window-days <days>",
      "the record can be restored this long, then DynamoDB's TTL removes it (1 to 30)",
      checked(parseRecoveryDays),
      7,
    )
    .action(async (clusterId, flags) => {
      const options = {
        clusterId,
        recoveryDays: flags.recoveryWindowDays,
        yes: flags.yes,
        recordOnly: flags.recordOnly,
      };
      await runOffboard(options, factory());
    });
}

export async function runOffboard(options: OffboardOptions, factory: Factory): Promise<void> {
  const { clusterId, recoveryDays } = options;
  // A cluster that is gone has no kubeconfig to load: only its record is touched.
  const cluster = options.recordOnly ? undefined : factory.operatorCluster();
  const question = cluster
    ? `Remove ecr-anywhere from cluster ${clusterId} (context ${cluster.config.currentContext}) and schedule its record for deletion?`
    : `Schedule the record of cluster ${clusterId} for deletion, leaving the cluster itself alone?`;
  if (!options.yes && !(await factory.confirm(question)))
    throw new Problem("not confirmed: nothing was changed");
  const store = factory.recordStore();
  const steps: Step<undefined>[] = [
    ...(cluster ? clusterSteps(cluster, clusterId, factory) : []),
    {
      title: `Schedule the cluster record for deletion (${recoveryDays}-day recovery window)`,
      run: () => store.scheduleDeletion(clusterId, recoveryDays),
    },
  ];
  try {
    const done = await factory.printer.steps(undefined, steps);
    factory.printer.result({ ok: true, clusterId, steps: done }, () =>
      [
        "",
        cluster
          ? `Cluster ${clusterId} is offboarded. Managed Secrets were left as they are: they keep their current credentials until expires_at, and nothing refreshes them any more.`
          : `The record of cluster ${clusterId} is scheduled for deletion; the webhook refuses its token from now on.`,
        ...undoLines(clusterId, recoveryDays, factory.records),
        "",
      ].join("\n"),
    );
  } finally {
    store.close();
  }
}

/** What offboarding removes from the cluster, in the order that never blocks a write. */
function clusterSteps(
  cluster: OperatorCluster,
  clusterId: string,
  factory: Factory,
): Step<undefined>[] {
  return [
    {
      title: "Remove the webhook configuration",
      run: async () => {
        // Refuses when the configuration here belongs to another cluster id.
        await registeredWebhook(cluster, clusterId);
        return cluster.remove(webhookConfigurationRef(WEBHOOK_CONFIGURATION_NAME));
      },
    },
    {
      title: "Remove the namespace labels ecr-anywhere set",
      run: () => removeNamespaceLabels(cluster, factory),
    },
    {
      title: "Remove the refresher's RBAC, ServiceAccount and namespace",
      run: () => removeRefresher(cluster, factory.labelPrefix),
    },
  ];
}

/** How to undo the offboarding within the recovery window: onboard again, or clear the marks. */
export function undoLines(clusterId: string, recoveryDays: number, records: string): string[] {
  const tables = recordTables(records);
  const key = `'{"clusterId":{"S":"${clusterId}"}}'`;
  const unmark = (table: string) =>
    `  aws dynamodb update-item --table-name ${table} --key ${key} --update-expression "REMOVE deletedAt, expiresAt"`;
  return [
    `The record (its token hashes and the refresher's kubeconfig) can be restored within ${recoveryDays} day(s): run the same ecr-anywhere onboard command again (it says "restored"), or clear the marks (the refresher's first):`,
    unmark(tables.refresher),
    unmark(tables.webhook),
  ];
}

async function removeNamespaceLabels(cluster: OperatorCluster, factory: Factory): Promise<string> {
  const enabled = `${factory.names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`;
  const labelled = await cluster.namespacesWith(enabled);
  // Applying the namespace without the label drops only what this field manager owns.
  for (const namespace of labelled)
    await cluster.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  const still = await cluster.namespacesWith(enabled);
  return still.length > 0
    ? `${labelled.length - still.length} removed; kept on ${still.join(", ")} (set by another field manager than ${FIELD_MANAGER})`
    : `${labelled.length} removed`;
}

async function removeRefresher(cluster: OperatorCluster, labelPrefix: string): Promise<string> {
  const bindings = await cluster.roleBindingsWith("app.kubernetes.io/name=ecr-anywhere");
  // Below 1.30 the API server does not serve the policy's kind: there is nothing of it to remove.
  const { major, minor } = await cluster.serverVersion();
  const policy =
    major > 1 || minor >= SECRET_POLICY_MINIMUM_MINOR
      ? await refresherSecretPolicy({ labelPrefix })
      : [];
  const rbac = [
    ...(await refresherRbac({ namespaces: [], labelPrefix })),
    ...(await refresherServiceAccountsRole({ labelPrefix })),
    ...policy,
  ] as KubernetesObject[];
  const objects: KubernetesObject[] = [
    ...bindings.map((binding) => ({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: binding,
    })),
    ...rbac.reverse(),
  ];
  let deleted = 0;
  for (const object of objects) if ((await cluster.remove(object)) === "deleted") deleted++;
  const namespace = await cluster.read<KubernetesObject>({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: REFRESHER_NAMESPACE },
  });
  const ours =
    namespace?.metadata?.labels?.["app.kubernetes.io/managed-by"] ===
    MANAGED_BY_LABEL["app.kubernetes.io/managed-by"];
  if (ours && (await cluster.remove(namespace as KubernetesObject)) === "deleted") deleted++;
  return `${deleted} deleted`;
}
