/** What `status` says about one cluster, from the managed Secrets its refresher can see. Pure. */
import type { ContractNames } from "../../functions/core/contract.ts";
import { isStale, secretTimes } from "../../functions/core/staleness.ts";
import { toRfc3339 } from "../../functions/core/time.ts";

export interface SecretAnnotations {
  readonly namespace: string;
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface ClusterStatus {
  readonly clusterId: string;
  readonly reachable: boolean;
  readonly namespaces: readonly string[];
  readonly managedSecrets: number;
  readonly staleSecrets: number;
  readonly expiredSecrets: number;
  /** Least time left on any managed Secret's credentials; undefined when there are none. */
  readonly leastRemainingMs: number | undefined;
  readonly newestUpdatedAt: string | undefined;
  /** Why this cluster needs attention, one line each; empty when healthy. */
  readonly problems: readonly string[];
}

export function summarizeCluster(
  clusterId: string,
  namespaces: readonly string[],
  secrets: readonly SecretAnnotations[],
  names: ContractNames,
  nowMs: number,
  refreshBeforeMs: number,
): ClusterStatus {
  let stale = 0;
  let expired = 0;
  let leastRemainingMs: number | undefined;
  let newestUpdatedMs: number | undefined;
  for (const secret of secrets) {
    const times = secretTimes(secret.annotations, names);
    if (isStale(times, nowMs, refreshBeforeMs)) stale++;
    if (times.expiresAtMs === undefined || times.expiresAtMs <= nowMs) expired++;
    const remaining = (times.expiresAtMs ?? nowMs) - nowMs;
    leastRemainingMs = Math.min(leastRemainingMs ?? remaining, remaining);
    if (times.updatedAtMs !== undefined)
      newestUpdatedMs = Math.max(newestUpdatedMs ?? times.updatedAtMs, times.updatedAtMs);
  }
  const problems: string[] = [];
  if (expired > 0) problems.push(`${expired} managed Secret(s) without valid credentials`);
  if (stale > expired) problems.push(`${stale - expired} managed Secret(s) stale`);
  if (namespaces.length === 0) problems.push("no enabled namespaces");
  return {
    clusterId,
    reachable: true,
    namespaces,
    managedSecrets: secrets.length,
    staleSecrets: stale,
    expiredSecrets: expired,
    leastRemainingMs,
    newestUpdatedAt: newestUpdatedMs === undefined ? undefined : toRfc3339(newestUpdatedMs),
    problems,
  };
}

export function unreachableCluster(clusterId: string, reason: string): ClusterStatus {
  return {
    clusterId,
    reachable: false,
    namespaces: [],
    managedSecrets: 0,
    staleSecrets: 0,
    expiredSecrets: 0,
    leastRemainingMs: undefined,
    newestUpdatedAt: undefined,
    problems: [reason],
  };
}
