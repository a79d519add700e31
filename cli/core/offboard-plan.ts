/**
 * What `offboard` removes, decided from what it found: in the order that never blocks a write (the
 * webhook first, so no managed write waits on a webhook whose record is going; then the labels,
 * the refresher's objects and its namespace; the record last, so until then the cluster can still
 * be onboarded again as it was). What is already gone is not in the plan, so a second run plans
 * only what the first one left. Pure: offboard reads, this decides.
 */
import type { ClusterPlan, ObjectRef, PlannedChange } from "./cluster-plan.ts";
import { describeRef, recordRef } from "./cluster-plan.ts";

export const OFFBOARD_STEPS = {
  webhook: "Remove the webhook configuration",
  labels: "Remove the namespace labels ecr-anywhere set",
  refresher: "Remove the refresher's RBAC, ServiceAccount and namespace",
  record: (recoveryDays: number) =>
    `Schedule the cluster record for deletion (${recoveryDays}-day recovery window)`,
} as const;

/** What offboard read from the cluster and the record store. */
export interface OffboardFindings {
  readonly clusterId: string;
  readonly records: string;
  readonly recoveryDays: number;
  /** Undefined with `--record-only`: the cluster is left alone. */
  readonly cluster?:
    | {
        readonly context: string;
        /** This cluster's webhook configuration, when there is one. */
        readonly webhookConfiguration?: ObjectRef | undefined;
        /** Namespaces labelled enabled, as Namespace objects to apply without the label. */
        readonly labelledNamespaces: readonly ObjectRef[];
        /** The refresher's objects that exist, in removal order (bindings before roles). */
        readonly refresherObjects: readonly ObjectRef[];
        /** The refresher's namespace, when the CLI made it, and whether it is being deleted. */
        readonly refresherNamespace?:
          | { readonly ref: ObjectRef; readonly terminating: boolean }
          | undefined;
      }
    | undefined;
  /** The webhook's item of the record: live, marked deleted already, or absent. */
  readonly record: "live" | "deleted" | "absent";
}

export function planOffboard(found: OffboardFindings): ClusterPlan {
  const changes: PlannedChange[] = [...clusterChanges(found.cluster)];
  const ref = recordRef(found.records, found.clusterId);
  const step = OFFBOARD_STEPS.record(found.recoveryDays);
  if (found.record === "absent")
    changes.push({ action: "keep", ref, step, reason: "no record to schedule for deletion" });
  else
    changes.push({
      action: "remove",
      ref,
      step,
      reason:
        found.record === "live"
          ? "both items marked deleted: the webhook refuses the id at once, DynamoDB removes them after the recovery window"
          : "marked deleted already; marked again, so both items carry the mark",
    });
  return {
    clusterId: found.clusterId,
    ...(found.cluster ? { context: found.cluster.context } : {}),
    changes,
  };
}

function clusterChanges(cluster: OffboardFindings["cluster"]): PlannedChange[] {
  if (!cluster) return [];
  const remove = (ref: ObjectRef, step: string, reason: string): PlannedChange => ({
    action: "remove",
    ref,
    step,
    reason,
  });
  const namespace = cluster.refresherNamespace;
  return [
    ...(cluster.webhookConfiguration
      ? [
          remove(
            cluster.webhookConfiguration,
            OFFBOARD_STEPS.webhook,
            "first: once it is gone no write waits on a webhook whose record is going",
          ),
        ]
      : []),
    ...cluster.labelledNamespaces.map(
      (ref): PlannedChange => ({
        action: "update",
        ref,
        step: OFFBOARD_STEPS.labels,
        reason: "drop the enabling label (only what ecr-anywhere's field manager set)",
        object: { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name } },
      }),
    ),
    ...cluster.refresherObjects.map((ref) =>
      remove(ref, OFFBOARD_STEPS.refresher, "the refresher's access, no longer used"),
    ),
    ...(namespace
      ? [
          namespace.terminating
            ? ({
                action: "keep",
                ref: namespace.ref,
                step: OFFBOARD_STEPS.refresher,
                reason: `${describeRef(namespace.ref)} is being deleted already`,
              } satisfies PlannedChange)
            : remove(namespace.ref, OFFBOARD_STEPS.refresher, "ecr-anywhere created it"),
        ]
      : []),
  ];
}
