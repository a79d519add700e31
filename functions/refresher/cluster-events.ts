/**
 * Records what the refresher saw as Kubernetes Events in the cluster: a Secret it could not
 * refresh, the same Secret once it recovers, and an `ensure` it could not meet (on the Namespace).
 * Best effort: an Event that cannot be written never fails the refresh, and a cluster whose RBAC
 * lacks Events (onboarded before they existed) costs one refused call per run, not one per Secret.
 *
 * Which RefreshFailed Events are still open is remembered in the cluster record (`OpenFailures`,
 * read with it, written back by the run when it changed), so the recovery check (a conditional
 * JSON Patch of the Event) is made only for a Secret whose failure is open, not for every refresh.
 */
import { type ClusterApi, KubernetesError, type ManagedSecret } from "../adapters/kubernetes.ts";
import type { OpenFailures, OpenFailuresChange } from "../core/cluster-record.ts";
import {
  annotationsFor,
  type EventFields,
  type EventSubject,
  eventName,
  eventNamespace,
  newEvent,
  nextSeries,
  openAnnotation,
} from "../core/events.ts";

/** Event writes one cluster may cost per run: a storm of failures stays a handful of objects. */
export const EVENT_WRITES_PER_RUN = 50;

export interface EventRecorderOptions {
  readonly labelPrefix: string;
  readonly clusterId: string;
  readonly now: () => number;
  /** The open failures as the cluster record held them when this run read it. */
  readonly openFailures: OpenFailures;
}

export class ClusterEvents {
  readonly #api: ClusterApi;
  readonly #options: EventRecorderOptions;
  #writesLeft = EVENT_WRITES_PER_RUN;
  #disabled = false;
  #problem: string | undefined;
  #recorded = 0;
  readonly #remembered: ReadonlySet<string>;
  /** Secrets whose RefreshFailed Event this run wrote (or may have written). */
  readonly #opened = new Set<string>();
  /** Secrets whose recovery check got an answer: their failure is closed. */
  readonly #closed = new Set<string>();
  /** A refreshed Secret whose failure may be open went without an answered check. */
  #unchecked = false;

  constructor(api: ClusterApi, options: EventRecorderOptions) {
    this.#api = api;
    this.#options = options;
    this.#remembered = new Set(options.openFailures.uids);
  }

  /** Events created or counted again in this run. */
  get recorded(): number {
    return this.#recorded;
  }

  /** The first Event that could not be written in this run, and why. */
  get problem(): string | undefined {
    return this.#problem;
  }

  async refreshFailed(secret: ManagedSecret, problem: string): Promise<void> {
    const outcome = await this.#attempt(() =>
      this.#upsert({
        subject: secretSubject(secret),
        reason: "RefreshFailed",
        note: `ecr-anywhere could not refresh this Secret's ECR credentials: ${problem}`,
      }),
    );
    // Remembered when the Event may be open: written, or a write whose fate is unknown; and, while
    // the record cannot say which failures are open, every failure (its Event may be from before).
    const mayBeOpen = outcome === "done" || outcome === "failed";
    if (secret.uid && (mayBeOpen || this.#untracked)) this.#opened.add(secret.uid);
  }

  /**
   * After a successful refresh: a Refreshed Event only when a failure was still open. The check
   * (a conditional JSON Patch of the RefreshFailed Event) is made only for a Secret whose failure
   * the record remembers, or for every one while it cannot say.
   */
  async refreshed(secret: ManagedSecret): Promise<void> {
    if (!this.#untracked && !this.#remembered.has(secret.uid)) return;
    const subject = secretSubject(secret);
    await this.#attempt(async () => {
      const failure = eventName(subject, "RefreshFailed");
      const outcome = await this.#api.flipEventAnnotation(
        eventNamespace(subject),
        failure,
        openAnnotation(this.#options.labelPrefix),
      );
      // Flipped, already closed, or gone: either way nothing is open any more.
      this.#closed.add(secret.uid);
      if (outcome !== "flipped") return true;
      return this.#upsert({
        subject,
        reason: "Refreshed",
        note: "ecr-anywhere refreshed this Secret's ECR credentials again after failing to",
      });
    });
    if (!this.#closed.has(secret.uid)) this.#unchecked = true;
  }

  /**
   * What this run learnt about open failures, to merge into the record. `listed` holds the uid of
   * every managed Secret, or is undefined when a list failed: only a complete listing may drop the
   * failures of Secrets that are gone, or clear the "untracked" marker.
   */
  openFailuresChange(
    listed: ReadonlySet<string> | undefined,
    nowMs: number,
  ): OpenFailuresChange | undefined {
    const read = this.#options.openFailures;
    const gone = listed ? read.uids.filter((uid) => !listed.has(uid)) : [];
    const closed = [...this.#closed, ...gone];
    const clears = listed && !this.#unchecked ? read.untrackedSince : undefined;
    if (this.#opened.size === 0 && closed.length === 0 && clears === undefined) return undefined;
    return {
      opened: [...this.#opened],
      closed,
      ...(clears === undefined ? {} : { clears }),
      at: new Date(nowMs).toISOString(),
    };
  }

  get #untracked(): boolean {
    return this.#options.openFailures.untrackedSince !== undefined;
  }

  async ensureFailed(namespace: string, problem: string): Promise<void> {
    await this.#attempt(async () => {
      const uid = await this.#api.namespaceUid(namespace);
      // A namespace that does not exist has nowhere to show an Event; the logs say it.
      if (uid === undefined) return true;
      return this.#upsert({
        subject: { kind: "Namespace", name: namespace, namespace: "", uid },
        reason: "EnsureFailed",
        note: `ecr-anywhere could not ensure its managed Secret here: ${problem}`,
      });
    });
  }

  /** Creates the Event, or counts one more occurrence in the one already there; false if over budget. */
  async #upsert(fields: EventFields): Promise<boolean> {
    if (this.#writesLeft <= 0) return false;
    this.#writesLeft--;
    const { labelPrefix, clusterId, now } = this.#options;
    const body = newEvent(fields, { labelPrefix, reportingInstance: clusterId, nowMs: now() });
    if ((await this.#api.createEvent(body)) === "created") {
      this.#recorded++;
      return true;
    }
    const { namespace, name } = body.metadata;
    // The note cannot change: the latest message goes in an annotation, and the answer says how
    // many times it has been seen so far.
    const current = await this.#api.patchEvent(namespace, name, {
      metadata: { annotations: annotationsFor(fields, labelPrefix) },
    });
    await this.#api.patchEvent(namespace, name, {
      // Conditional on what was read: a concurrent count fails here instead of being lost.
      metadata: { resourceVersion: current.resourceVersion },
      series: nextSeries(current.series, now()),
    });
    this.#recorded++;
    return true;
  }

  /**
   * Runs one write unless Events are off for this run: "skipped" also when the write found the
   * budget spent, "failed" when its fate is unknown, "forbidden" when RBAC refused it.
   */
  async #attempt(
    write: () => Promise<boolean>,
  ): Promise<"done" | "skipped" | "failed" | "forbidden"> {
    if (this.#disabled) return "skipped";
    try {
      return (await write()) ? "done" : "skipped";
    } catch (error) {
      const status = error instanceof KubernetesError ? error.status : undefined;
      // Another writer counted the same occurrence first: nothing is lost.
      if (status === 409) return "done";
      const message = error instanceof Error ? error.message : String(error);
      // Forbidden: the cluster's RBAC predates Events. Stop trying for this run.
      this.#disabled ||= status === 403;
      this.#problem ??=
        status === 403
          ? `cannot record Events (${message}); re-run ecr-anywhere onboard to grant events: create, patch`
          : `cannot record an Event: ${message}`;
      return status === 403 ? "forbidden" : "failed";
    }
  }
}

function secretSubject(secret: ManagedSecret): EventSubject {
  return { kind: "Secret", name: secret.name, namespace: secret.namespace, uid: secret.uid };
}
