/**
 * Carries out a cluster plan (cli/core/cluster-plan.ts) step by step, keeping count of what is
 * done, so an interrupted run says what it changed, what is left, and the command that finishes
 * the job. Every change is idempotent: an object already gone counts as removed, and applying is
 * server-side apply, so the finishing run simply plans and acts again.
 */
import {
  type ClusterPlan,
  describeChange,
  objectOf,
  type PlannedChange,
  pendingChanges,
  RECORD_KIND,
} from "../core/cluster-plan.ts";
import { InputError } from "../core/inputs.ts";
import type { OperatorCluster } from "../factory.ts";
import { Problem, StepFailure } from "../ui.ts";

/** How a record change is carried out: the command knows what writing or removing it means. */
export type RecordAction = (change: PlannedChange) => Promise<string>;

export class PlanRun {
  readonly plan: ClusterPlan;
  readonly #done = new Set<PlannedChange>();

  constructor(plan: ClusterPlan) {
    this.plan = plan;
  }

  /** The changes of one step, in plan order; returns the step's outcome ("2 deleted, 1 absent"). */
  async step(
    step: string,
    cluster: Pick<OperatorCluster, "apply" | "remove"> | undefined,
    record?: RecordAction,
  ): Promise<string> {
    return countOutcomes(await this.stepOutcomes(step, cluster, record));
  }

  /** The same, with each change's own outcome. */
  async stepOutcomes(
    step: string,
    cluster: Pick<OperatorCluster, "apply" | "remove"> | undefined,
    record?: RecordAction,
  ): Promise<string[]> {
    const outcomes: string[] = [];
    for (const change of this.plan.changes.filter((item) => item.step === step)) {
      outcomes.push(await this.#carryOut(change, cluster, record));
      this.#done.add(change);
    }
    return outcomes;
  }

  done(): PlannedChange[] {
    return pendingChanges(this.plan).filter((change) => this.#done.has(change));
  }

  left(): PlannedChange[] {
    return pendingChanges(this.plan).filter((change) => !this.#done.has(change));
  }

  async #carryOut(
    change: PlannedChange,
    cluster: Pick<OperatorCluster, "apply" | "remove"> | undefined,
    record: RecordAction | undefined,
  ): Promise<string> {
    if (change.action === "keep") return "unchanged";
    if (change.ref.kind === RECORD_KIND) {
      if (!record) throw new Error(`internal: no record action for ${describeChange(change)}`);
      return record(change);
    }
    if (!cluster) throw new Error(`internal: no cluster for ${describeChange(change)}`);
    if (change.action === "remove") return cluster.remove(objectOf(change.ref));
    if (!change.object) throw new Error(`internal: nothing to apply for ${describeChange(change)}`);
    return cluster.apply(change.object);
  }
}

function countOutcomes(outcomes: readonly string[]): string {
  if (outcomes.length === 0) return "nothing to do";
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return [...counts].map(([outcome, count]) => `${count} ${outcome}`).join(", ");
}

/** A run stopped after changing something: what it did, what is left, and how to finish. */
export class PlanInterrupted extends Problem {
  readonly done: readonly string[];
  readonly left: readonly string[];
  readonly finish: string;
  constructor(failure: StepFailure, run: PlanRun, finish: string) {
    const done = run.done().map(describeChange);
    const left = run.left().map(describeChange);
    super(
      [
        `${failure.step} failed: ${failure.message}`,
        `  done: ${done.join("; ") || "nothing"}`,
        `  left: ${left.join("; ") || "nothing in the cluster or the record"}`,
        `  to finish, run: ${finish}`,
      ].join("\n"),
      { cause: failure },
    );
    this.done = done;
    this.left = left;
    this.finish = finish;
  }
}

/**
 * A step's failure as the person needs it: as it is before the plan was made (nothing changed; the
 * message says what to fix) or when the input was wrong (exit 2), otherwise with what is left.
 */
export function interruption(
  error: unknown,
  run: PlanRun | undefined,
  finish: () => string,
): unknown {
  if (!(error instanceof StepFailure) || !run || error.cause instanceof InputError) return error;
  return new PlanInterrupted(error, run, finish());
}
