/**
 * `ecr-anywhere offboard`: removes what onboard added, in the order that never blocks a write:
 * the webhook first, then labels and RBAC, then the record (with Secrets Manager's recovery
 * window). The users' Secrets stay as they are.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import {
  contractNames,
  DEFAULT_LABEL_PREFIX,
  NAMESPACE_ENABLED_VALUE,
} from "../../functions/core/contract.ts";
import { refresherRbac } from "../../k8s/templates.ts";
import { RecordStore } from "../adapters/aws.ts";
import { type KubeconfigChoice, UserCluster } from "../adapters/user-cluster.ts";
import {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  REFRESHER_NAMESPACE,
  WEBHOOK_CONFIGURATION_NAME,
} from "../core/onboard-plan.ts";
import { confirm, emit, type OutputFormat, Problem, runSteps } from "../ui.ts";
import { registeredWebhook, webhookConfigurationRef } from "./cluster-objects.ts";

export interface OffboardOptions {
  readonly clusterId: string;
  readonly recordPrefix: string;
  readonly kube: KubeconfigChoice;
  readonly labelPrefix?: string | undefined;
  readonly recoveryDays: number;
  readonly yes: boolean;
  readonly output: OutputFormat;
}

export async function offboard(options: OffboardOptions): Promise<void> {
  const prefix = options.labelPrefix ?? DEFAULT_LABEL_PREFIX;
  const names = contractNames(prefix);
  const cluster = UserCluster.load(options.kube);
  if (
    !options.yes &&
    !(await confirm(
      `Remove ecr-anywhere from cluster ${options.clusterId} (context ${cluster.config.currentContext}) and schedule its record for deletion?`,
    ))
  )
    throw new Problem("not confirmed: nothing was changed");
  const store = new RecordStore(options.recordPrefix);
  const context: { enabled?: string[] } = {};
  try {
    const done = await runSteps(
      context,
      [
        {
          title: "Remove the webhook configuration",
          run: async () => {
            // Refuses when the configuration here belongs to another cluster id.
            await registeredWebhook(cluster, options.clusterId);
            return cluster.remove(webhookConfigurationRef(WEBHOOK_CONFIGURATION_NAME));
          },
        },
        {
          title: "Remove the namespace labels ecr-anywhere set",
          run: async (ctx) => {
            ctx.enabled = await cluster.namespacesWith(
              `${names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`,
            );
            // Applying the namespace without the label drops only what this field manager owns.
            for (const namespace of ctx.enabled)
              await cluster.apply({
                apiVersion: "v1",
                kind: "Namespace",
                metadata: { name: namespace },
              });
            const still = await cluster.namespacesWith(
              `${names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`,
            );
            return still.length > 0
              ? `${ctx.enabled.length - still.length} removed; kept on ${still.join(", ")} (set by another field manager than ${FIELD_MANAGER})`
              : `${ctx.enabled.length} removed`;
          },
        },
        {
          title: "Remove the refresher's RBAC, ServiceAccount and namespace",
          run: async () => {
            const bindings = await cluster.roleBindingsWith("app.kubernetes.io/name=ecr-anywhere");
            const objects: KubernetesObject[] = [
              ...bindings.map((binding) => ({
                apiVersion: "rbac.authorization.k8s.io/v1",
                kind: "RoleBinding",
                metadata: binding,
              })),
              ...(
                (await refresherRbac({ namespaces: [], labelPrefix: prefix })) as KubernetesObject[]
              ).reverse(),
            ];
            let deleted = 0;
            for (const object of objects)
              if ((await cluster.remove(object)) === "deleted") deleted++;
            const namespace = await cluster.read<KubernetesObject>({
              apiVersion: "v1",
              kind: "Namespace",
              metadata: { name: REFRESHER_NAMESPACE },
            });
            const ours =
              namespace?.metadata?.labels?.["app.kubernetes.io/managed-by"] ===
              MANAGED_BY_LABEL["app.kubernetes.io/managed-by"];
            if (ours && (await cluster.remove(namespace as KubernetesObject)) === "deleted")
              deleted++;
            return `${deleted} deleted`;
          },
        },
        {
          title: `Schedule the cluster record for deletion (${options.recoveryDays}-day recovery window)`,
          run: () => store.scheduleDeletion(options.clusterId, options.recoveryDays),
        },
      ],
      options.output,
    );
    emit(options.output, { ok: true, clusterId: options.clusterId, steps: done }, () =>
      [
        "",
        `Cluster ${options.clusterId} is offboarded. Managed Secrets were left as they are: they keep their current credentials until expires_at, and nothing refreshes them any more.`,
        `The record can be restored within ${options.recoveryDays} days: aws secretsmanager restore-secret --secret-id ${store.nameOf(options.clusterId)}`,
        "",
      ].join("\n"),
    );
  } finally {
    store.close();
  }
}
