/**
 * Kubernetes Events the refresher records where people look first (`kubectl describe`): what they
 * say, what they are named, and how a repeat is counted. Pure.
 *
 * The refresher may only create and patch Events (no get, no list), so an Event's name is derived
 * from what it is about: a second failing run finds the same object (409 on create) and counts it
 * in `series` instead of adding another.
 */

import { createHash } from "node:crypto";
import { redactWebhookTokens } from "./auth.ts";
import { sanitize } from "./sanitize.ts";

export type EventReason = "RefreshFailed" | "Refreshed" | "EnsureFailed";

/** The object an Event is about (`regarding`). */
export interface EventSubject {
  readonly kind: "Secret" | "Namespace";
  readonly name: string;
  /** The Secret's namespace; empty for a Namespace (cluster-scoped). */
  readonly namespace: string;
  readonly uid: string;
}

export interface EventFields {
  readonly subject: EventSubject;
  readonly reason: EventReason;
  readonly note: string;
}

/** `series` as events.k8s.io/v1 counts repeats: absent on the first occurrence, then 2, 3, … */
export interface EventSeries {
  readonly count: number;
  readonly lastObservedTime: string;
}

// The API server's limits (k8s.io/kubernetes pkg/apis/core/validation/events.go).
const NOTE_LIMIT = 1024;
const NAME_PREFIX_LIMIT = 200;

const TYPES: Readonly<Record<EventReason, "Warning" | "Normal">> = {
  RefreshFailed: "Warning",
  Refreshed: "Normal",
  EnsureFailed: "Warning",
};
const ACTIONS: Readonly<Record<EventReason, string>> = {
  RefreshFailed: "Refresh",
  Refreshed: "Refresh",
  EnsureFailed: "Ensure",
};

/**
 * Where the Event lives: beside a Secret; a cluster-scoped Namespace's Events must be in `default`
 * (the API server refuses any other namespace for a cluster-scoped object).
 */
export function eventNamespace(subject: EventSubject): string {
  return subject.kind === "Namespace" ? "default" : subject.namespace;
}

/**
 * One name per (object, reason): the object's own name (for `kubectl get events`) and a hash of
 * its uid and the reason, so a recreated object starts afresh and names stay within 253 characters.
 */
export function eventName(subject: EventSubject, reason: EventReason): string {
  const digest = createHash("sha256")
    .update(`${subject.kind}\n${subject.uid}\n${reason}`)
    .digest("hex")
    .slice(0, 16);
  return `${subject.name.slice(0, NAME_PREFIX_LIMIT)}.ecr-anywhere.${digest}`;
}

/** The annotation that says whether the failure an Event reports is still going on. */
export function openAnnotation(labelPrefix: string): string {
  return `${labelPrefix}/refresh-failing`;
}

/** The annotation carrying the latest message: a note cannot change once the Event exists. */
function latestProblemAnnotation(labelPrefix: string): string {
  return `${labelPrefix}/latest-problem`;
}

/** kube-apiserver's MicroTime: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

/**
 * An Event's note as kube-apiserver accepts it: tokens redacted, one printable line, at most 1,024
 * UTF-8 bytes (it counts bytes, `len(note) > 1024`, so a cut by characters is refused with 422 as
 * soon as the message holds a multi-byte character).
 */
export function truncateNote(note: string): string {
  return sanitize(redactWebhookTokens(note), NOTE_LIMIT);
}

export interface NewEventOptions {
  readonly labelPrefix: string;
  /** Which refresher wrote it: the cluster id, so several stacks can be told apart. */
  readonly reportingInstance: string;
  readonly nowMs: number;
}

/** The events.k8s.io/v1 body of a first occurrence. */
export function newEvent(fields: EventFields, options: NewEventOptions) {
  const { subject, reason } = fields;
  const note = truncateNote(fields.note);
  return {
    apiVersion: "events.k8s.io/v1",
    kind: "Event",
    metadata: {
      name: eventName(subject, reason),
      namespace: eventNamespace(subject),
      annotations: annotationsFor(fields, options.labelPrefix, note),
    },
    eventTime: microTime(options.nowMs),
    reportingController: `${options.labelPrefix}/refresher`,
    reportingInstance: options.reportingInstance.slice(0, 128),
    action: ACTIONS[reason],
    reason,
    type: TYPES[reason],
    note,
    regarding: {
      apiVersion: "v1",
      kind: subject.kind,
      name: subject.name,
      ...(subject.namespace ? { namespace: subject.namespace } : {}),
      uid: subject.uid,
    },
  };
}

/** The annotations a repeat refreshes (the note itself is immutable). */
export function annotationsFor(
  fields: EventFields,
  labelPrefix: string,
  note = truncateNote(fields.note),
): Record<string, string> {
  if (fields.reason !== "RefreshFailed") return {};
  return { [openAnnotation(labelPrefix)]: "true", [latestProblemAnnotation(labelPrefix)]: note };
}

/** The series after one more occurrence. */
export function nextSeries(current: EventSeries | undefined, nowMs: number): EventSeries {
  return { count: (current?.count ?? 1) + 1, lastObservedTime: microTime(nowMs) };
}
