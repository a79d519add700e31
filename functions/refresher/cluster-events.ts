/**
 * Records what the refresher saw as Kubernetes Events in the cluster: a Secret it could not
 * refresh, the same Secret once it recovers, and an `ensure` it could not meet (on the Namespace).
 * Best effort: an Event that cannot be written never fails the refresh, and a cluster whose RBAC
 * lacks Events (onboarded before they existed) costs one refused call per run, not one per Secret.
 */
import { type ClusterApi, KubernetesError, type ManagedSecret } from "../adapters/kubernetes.ts";
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
}

export class ClusterEvents {
  readonly #api: ClusterApi;
  readonly #options: EventRecorderOptions;
  #writesLeft = EVENT_WRITES_PER_RUN;
  #disabled = false;
  #problem: string | undefined;
  #recorded = 0;

  constructor(api: ClusterApi, options: EventRecorderOptions) {
    this.#api = api;
    this.#options = options;
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
    await this.#record({
      subject: secretSubject(secret),
      reason: "RefreshFailed",
      note: `ecr-anywhere could not refresh this Secret's ECR credentials: ${problem}`,
    });
  }

  /** After a successful refresh: a Refreshed Event only when a failure was still open. */
  async refreshed(secret: ManagedSecret): Promise<void> {
    if (this.#disabled) return;
    const subject = secretSubject(secret);
    await this.#attempt(async () => {
      const failure = eventName(subject, "RefreshFailed");
      const outcome = await this.#api.flipEventAnnotation(
        eventNamespace(subject),
        failure,
        openAnnotation(this.#options.labelPrefix),
      );
      if (outcome !== "flipped") return;
      await this.#upsert({
        subject,
        reason: "Refreshed",
        note: "ecr-anywhere refreshed this Secret's ECR credentials again after failing to",
      });
    });
  }

  async ensureFailed(namespace: string, problem: string): Promise<void> {
    if (this.#disabled) return;
    await this.#attempt(async () => {
      const uid = await this.#api.namespaceUid(namespace);
      // A namespace that does not exist has nowhere to show an Event; the logs say it.
      if (uid === undefined) return;
      await this.#upsert({
        subject: { kind: "Namespace", name: namespace, namespace: "", uid },
        reason: "EnsureFailed",
        note: `ecr-anywhere could not ensure its managed Secret here: ${problem}`,
      });
    });
  }

  async #record(fields: EventFields): Promise<void> {
    if (this.#disabled) return;
    await this.#attempt(() => this.#upsert(fields));
  }

  /** Creates the Event, or counts one more occurrence in the one already there. */
  async #upsert(fields: EventFields): Promise<void> {
    if (this.#writesLeft <= 0) return;
    this.#writesLeft--;
    const { labelPrefix, clusterId, now } = this.#options;
    const body = newEvent(fields, { labelPrefix, reportingInstance: clusterId, nowMs: now() });
    if ((await this.#api.createEvent(body)) === "created") {
      this.#recorded++;
      return;
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
  }

  async #attempt(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      const status = error instanceof KubernetesError ? error.status : undefined;
      // Another writer counted the same occurrence first: nothing is lost.
      if (status === 409) return;
      const message = error instanceof Error ? error.message : String(error);
      // Forbidden: the cluster's RBAC predates Events. Stop trying for this run.
      this.#disabled ||= status === 403;
      this.#problem ??=
        status === 403
          ? `cannot record Events (${message}); re-run ecr-anywhere onboard to grant events: create, patch`
          : `cannot record an Event: ${message}`;
    }
  }
}

function secretSubject(secret: ManagedSecret): EventSubject {
  return { kind: "Secret", name: secret.name, namespace: secret.namespace, uid: secret.uid };
}
