/**
 * `ecr-anywhere offboard`: removes what onboard added. It reads what is there, plans the removal
 * (cli/core/offboard-plan.ts: the webhook first, then labels and RBAC, then the record, both items
 * marked deleted, so the id is unknown at once; DynamoDB removes them when the recovery window
 * ends, and onboard restores them before that), then acts on the plan. What is gone already is not
 * planned, so an interrupted run is finished by running it again; its failure says what is left
 * and the command. The users' Secrets stay as they are.
 */
import { Command } from "@commander-js/extra-typings";
import type { KubernetesObject } from "@kubernetes/client-node";
import { NAMESPACE_ENABLED_VALUE, recordTables } from "../../functions/core/contract.ts";
import { refresherRbac, refresherServiceAccountsRole } from "../../k8s/refresher-rbac.ts";
import {
  refresherSecretPolicy,
  SECRET_POLICY_MINIMUM_MINOR,
} from "../../k8s/refresher-secret-policy.ts";
import {
  describeRef,
  finishingCommand,
  type ObjectRef,
  objectOf,
  plannedChanges,
  refOf,
  summarizePlan,
} from "../core/cluster-plan.ts";
import { parseClusterId, parseRecoveryDays } from "../core/inputs.ts";
import { OFFBOARD_STEPS, type OffboardFindings, planOffboard } from "../core/offboard-plan.ts";
import {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  REFRESHER_NAMESPACE,
  WEBHOOK_CONFIGURATION_NAME,
} from "../core/onboard-plan.ts";
import type { Factory, OperatorCluster, Records } from "../factory.ts";
import { checked } from "../flags.ts";
import { need, Problem, type Step } from "../ui.ts";
import { registeredWebhook, webhookConfigurationRef } from "./cluster-objects.ts";
import { interruption, PlanRun } from "./plan-run.ts";

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
  const { clusterId } = options;
  // A cluster that is gone has no kubeconfig to load: only its record is touched.
  const cluster = options.recordOnly ? undefined : factory.operatorCluster();
  const question = cluster
    ? `Remove ecr-anywhere from cluster ${clusterId} (context ${cluster.config.currentContext}) and schedule its record for deletion?`
    : `Schedule the record of cluster ${clusterId} for deletion, leaving the cluster itself alone?`;
  if (!options.yes && !(await factory.confirm(question)))
    throw new Problem("not confirmed: nothing was changed");
  const store = factory.recordStore();
  const state: { run?: PlanRun } = {};
  const finish = () =>
    finishingCommand(factory.invocation ?? ["offboard", clusterId], {
      context: cluster?.config.currentContext,
      addYes: true,
    });
  try {
    const done = await factory.printer.steps(
      state,
      offboardSteps(options, factory, cluster, store),
    );
    const plan = need(state.run).plan;
    factory.printer.result({ ok: true, clusterId, plan: plannedChanges(plan), steps: done }, () =>
      [
        "",
        cluster
          ? `Cluster ${clusterId} is offboarded. Managed Secrets were left as they are: they keep their current credentials until expires_at, and nothing refreshes them any more.`
          : `The record of cluster ${clusterId} is scheduled for deletion; the webhook refuses its token from now on.`,
        ...undoLines(clusterId, options.recoveryDays, factory.records),
        "",
      ].join("\n"),
    );
  } catch (error) {
    throw interruption(error, state.run, finish);
  } finally {
    store.close();
  }
}

/** Plan first (reads only), then one step per part of the plan, in its order. */
function offboardSteps(
  options: OffboardOptions,
  factory: Factory,
  cluster: OperatorCluster | undefined,
  store: Records,
): Step<{ run?: PlanRun }>[] {
  const { clusterId, recoveryDays } = options;
  return [
    {
      title: "Plan: read what ecr-anywhere has in the cluster and the record store",
      run: async (state) => {
        const plan = planOffboard(await offboardFindings(options, factory, cluster, store));
        state.run = new PlanRun(plan);
        return summarizePlan(plan);
      },
    },
    ...(cluster
      ? [
          {
            title: OFFBOARD_STEPS.webhook,
            run: (state: { run?: PlanRun }) =>
              need(state.run).step(OFFBOARD_STEPS.webhook, cluster),
          },
          {
            title: OFFBOARD_STEPS.labels,
            run: async (state: { run?: PlanRun }) =>
              labelsOutcome(
                await need(state.run).step(OFFBOARD_STEPS.labels, cluster),
                await cluster.namespacesWith(enabledSelector(factory)),
              ),
          },
          {
            title: OFFBOARD_STEPS.refresher,
            run: (state: { run?: PlanRun }) =>
              need(state.run).step(OFFBOARD_STEPS.refresher, cluster),
          },
        ]
      : []),
    {
      title: OFFBOARD_STEPS.record(recoveryDays),
      run: (state) =>
        need(state.run).step(OFFBOARD_STEPS.record(recoveryDays), cluster, () =>
          store.scheduleDeletion(clusterId, recoveryDays),
        ),
    },
  ];
}

function enabledSelector(factory: Factory): string {
  return `${factory.names.namespaceLabel}=${NAMESPACE_ENABLED_VALUE}`;
}

/** A label another field manager also set stays: say where, rather than claim it removed. */
function labelsOutcome(outcome: string, still: readonly string[]): string {
  return still.length > 0
    ? `${outcome}; kept on ${still.join(", ")} (set by another field manager than ${FIELD_MANAGER})`
    : outcome;
}

/** Everything offboard may remove, read (never changed) from the cluster and the store. */
async function offboardFindings(
  options: OffboardOptions,
  factory: Factory,
  cluster: OperatorCluster | undefined,
  store: Records,
): Promise<OffboardFindings> {
  const webhookPart = await store.readWebhookPart(options.clusterId);
  return {
    clusterId: options.clusterId,
    records: factory.records,
    recoveryDays: options.recoveryDays,
    cluster: cluster ? await clusterFindings(cluster, options.clusterId, factory) : undefined,
    record: !webhookPart ? "absent" : webhookPart.deleted ? "deleted" : "live",
  };
}

async function clusterFindings(
  cluster: OperatorCluster,
  clusterId: string,
  factory: Factory,
): Promise<NonNullable<OffboardFindings["cluster"]>> {
  // Refuses when the configuration here belongs to another cluster id: a wrong --context.
  const webhook = await registeredWebhook(cluster, clusterId);
  const labelled = await cluster.namespacesWith(enabledSelector(factory));
  const namespace = await cluster.read<KubernetesObject>(objectOf(REFRESHER_NAMESPACE_REF));
  const ours =
    namespace?.metadata?.labels?.["app.kubernetes.io/managed-by"] ===
    MANAGED_BY_LABEL["app.kubernetes.io/managed-by"];
  return {
    context: cluster.config.currentContext,
    webhookConfiguration: webhook
      ? refOf(webhookConfigurationRef(WEBHOOK_CONFIGURATION_NAME))
      : undefined,
    labelledNamespaces: labelled.map((name) => ({ apiVersion: "v1", kind: "Namespace", name })),
    refresherObjects: await existingRefresherObjects(cluster, factory.labelPrefix),
    refresherNamespace: ours
      ? {
          ref: REFRESHER_NAMESPACE_REF,
          terminating: Boolean(namespace?.metadata?.deletionTimestamp),
        }
      : undefined,
  };
}

const REFRESHER_NAMESPACE_REF: ObjectRef = {
  apiVersion: "v1",
  kind: "Namespace",
  name: REFRESHER_NAMESPACE,
};

/**
 * The refresher's objects still in the cluster, bindings before what they bind: every RoleBinding
 * onboard labelled (one per enabled namespace, wherever they are), then its fixed objects.
 */
async function existingRefresherObjects(
  cluster: OperatorCluster,
  labelPrefix: string,
): Promise<ObjectRef[]> {
  const bindings = await cluster.roleBindingsWith("app.kubernetes.io/name=ecr-anywhere");
  // Below 1.30 the API server does not serve the policy's kind: there is nothing of it to remove.
  const { major, minor } = await cluster.serverVersion();
  const policy =
    major > 1 || minor >= SECRET_POLICY_MINIMUM_MINOR ? refresherSecretPolicy({ labelPrefix }) : [];
  const fixed = [
    ...refresherRbac({ namespaces: [], labelPrefix }),
    refresherServiceAccountsRole(),
    ...policy,
  ].reverse();
  const candidates: ObjectRef[] = [
    ...bindings.map((binding) => ({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      ...binding,
    })),
    ...fixed.map(refOf),
  ];
  const unique = [...new Map(candidates.map((ref) => [describeRef(ref), ref])).values()];
  const present = await Promise.all(unique.map((ref) => cluster.read(objectOf(ref))));
  return unique.filter((_, index) => present[index] !== undefined);
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
