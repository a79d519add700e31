/**
 * What a command will do to one cluster, decided before it does any of it: an ordered list of
 * changes, each to one object (or to the cluster's record in AWS) with the reason for it. Built
 * from the command's inputs and what was read from the cluster; pure, so onboard, offboard and a
 * fleet command can share it, and a failure can name exactly what is left.
 */
import type { KubernetesObject } from "@kubernetes/client-node";

export type ChangeAction = "create" | "update" | "keep" | "remove";

/** The kind of the cluster's record: two items in DynamoDB rather than a Kubernetes object. */
export const RECORD_KIND = "ClusterRecord";

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string | undefined;
}

export interface PlannedChange {
  readonly action: ChangeAction;
  readonly ref: ObjectRef;
  readonly reason: string;
  /** The step that carries it out (the task list's line). */
  readonly step: string;
  /** What to apply, for create and update. */
  readonly object?: KubernetesObject | undefined;
}

export interface ClusterPlan {
  readonly clusterId: string;
  /** Kubeconfig context of the cluster; undefined when only the record is touched. */
  readonly context?: string | undefined;
  readonly changes: readonly PlannedChange[];
}

export function refOf(object: KubernetesObject): ObjectRef {
  return {
    apiVersion: object.apiVersion ?? "",
    kind: object.kind ?? "",
    name: object.metadata?.name ?? "",
    ...(object.metadata?.namespace ? { namespace: object.metadata.namespace } : {}),
  };
}

export function recordRef(records: string, clusterId: string): ObjectRef {
  return { apiVersion: "ecr-anywhere/aws", kind: RECORD_KIND, name: `${records}/${clusterId}` };
}

/** The object a ref names, for a read or a delete. */
export function objectOf(ref: ObjectRef): KubernetesObject {
  return {
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) },
  };
}

/** `ClusterRole ecr-anywhere-refresher-secrets`, `RoleBinding apps/ecr-anywhere-refresher`. */
export function describeRef(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}

/** `remove RoleBinding apps/ecr-anywhere-refresher`. */
export function describeChange(change: PlannedChange): string {
  return `${change.action} ${describeRef(change.ref)}`;
}

/** The changes that do something: what a run still owes while they are not done. */
export function pendingChanges(plan: ClusterPlan): PlannedChange[] {
  return plan.changes.filter((change) => change.action !== "keep");
}

/** The plan as `--output json` shows it: one entry per change, the object's ref flattened in. */
export function plannedChanges(plan: ClusterPlan) {
  return plan.changes.map(({ action, ref, reason }) => ({ action, ...ref, reason }));
}

/** `2 create, 5 keep`: the plan in one line. */
export function summarizePlan(plan: ClusterPlan): string {
  if (plan.changes.length === 0) return "nothing to change";
  const counts = new Map<ChangeAction, number>();
  for (const change of plan.changes)
    counts.set(change.action, (counts.get(change.action) ?? 0) + 1);
  return [...counts].map(([action, count]) => `${count} ${action}`).join(", ");
}

/**
 * Whether applying `wanted` would change `existing`: every field it sets is already so (maps may
 * hold more, as the API server adds defaults; lists match element by element). Server-side apply
 * changes nothing then, so the plan keeps the object.
 */
export function alreadyApplied(wanted: unknown, existing: unknown): boolean {
  if (Array.isArray(wanted))
    return (
      Array.isArray(existing) &&
      existing.length === wanted.length &&
      wanted.every((item, index) => alreadyApplied(item, existing[index]))
    );
  if (wanted !== null && typeof wanted === "object")
    return (
      existing !== null &&
      typeof existing === "object" &&
      !Array.isArray(existing) &&
      Object.entries(wanted).every(([key, value]) =>
        alreadyApplied(value, (existing as Record<string, unknown>)[key]),
      )
    );
  return wanted === existing;
}

/** create, update or keep one object, from what the cluster holds now. */
export function applyChange(
  wanted: KubernetesObject,
  existing: KubernetesObject | undefined,
  step: string,
  reason: string,
): PlannedChange {
  const ref = refOf(wanted);
  if (!existing) return { action: "create", ref, reason, step, object: wanted };
  if (alreadyApplied(wanted, existing))
    return { action: "keep", ref, reason: `${reason} (already as wanted)`, step };
  return { action: "update", ref, reason, step, object: wanted };
}

/** One shell word, quoted only when it must be. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command that finishes an interrupted run: the one given, with the flags it needs to run
 * unattended against the same cluster (`--context` pinned, `--yes` where the command asks).
 */
export function finishingCommand(
  args: readonly string[],
  options: { readonly context?: string | undefined; readonly addYes?: boolean },
): string {
  const words = [...args];
  const hasFlag = (flag: string) =>
    words.some((word) => word === flag || word.startsWith(`${flag}=`));
  if (options.context && !hasFlag("--context")) words.unshift("--context", options.context);
  if (options.addYes && !hasFlag("--yes") && !words.includes("-y")) words.push("--yes");
  return ["ecr-anywhere", ...words].map(shellWord).join(" ");
}
