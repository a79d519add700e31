/**
 * What one refresher invocation is asked to do, read from its event at the boundary. Pure.
 *
 * - EventBridge's scheduled event: the full run, over every registered cluster.
 * - `{ "clusterId": "<id>" }`: that one cluster, answered with its report (`ecr-anywhere onboard`
 *   invokes it to prove the refresher reaches a new cluster's API server from AWS).
 *
 * Anything else is refused, so a stray or hand-made event never starts a fleet run.
 */
import * as v from "valibot";
import { isDns1123Label } from "./cluster-record.ts";
import { type Parsed, parseWith } from "./validation.ts";

export type RefresherRequest =
  | { readonly kind: "scheduled" }
  | { readonly kind: "one-cluster"; readonly clusterId: string };

// EventBridge's scheduled event carries more (id, time, resources...); these two fields say what it is.
const ScheduledEvent = v.object({
  source: v.literal("aws.events"),
  "detail-type": v.literal("Scheduled Event"),
});

const OneClusterEvent = v.strictObject({
  clusterId: v.pipe(v.string(), v.check(isDns1123Label, "a cluster id (a DNS-1123 label)")),
});

export const EXPECTED_REFRESHER_EVENTS =
  'EventBridge\'s scheduled event (the full run) or {"clusterId": "<cluster-id>"} (one cluster)';

export function parseRefresherEvent(event: unknown): Parsed<RefresherRequest> {
  if (typeof event === "object" && event !== null && "clusterId" in event) {
    const one = parseWith(OneClusterEvent, event);
    return one.ok
      ? { ok: true, value: { kind: "one-cluster", clusterId: one.value.clusterId } }
      : { ok: false, error: `a one-cluster event: ${one.error}` };
  }
  if (parseWith(ScheduledEvent, event).ok) return { ok: true, value: { kind: "scheduled" } };
  return { ok: false, error: `expected ${EXPECTED_REFRESHER_EVENTS}` };
}
