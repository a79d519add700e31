/** When a managed Secret needs fresh credentials (docs/contract.md, "When a Secret is stale"). Pure. */
import type { ContractNames } from "./contract.ts";
import { parseRfc3339 } from "./time.ts";

export interface SecretTimes {
  /** Epoch ms of `expires_at`, undefined when missing or unparseable. */
  readonly expiresAtMs: number | undefined;
  readonly updatedAtMs: number | undefined;
}

export function secretTimes(
  annotations: Readonly<Record<string, string>> | undefined,
  names: ContractNames,
): SecretTimes {
  return {
    expiresAtMs: parseRfc3339(annotations?.[names.expiresAtAnnotation]),
    updatedAtMs: parseRfc3339(annotations?.[names.updatedAtAnnotation]),
  };
}

/**
 * `refreshBefore = min(configured, (expires_at - updated_at) / 2)`: short-lived credentials (an
 * assumed role's hour) are refreshed at half their life instead of never looking fresh.
 */
export function refreshBeforeMs(times: SecretTimes, configuredMs: number): number {
  const { expiresAtMs, updatedAtMs } = times;
  if (expiresAtMs === undefined || updatedAtMs === undefined || updatedAtMs > expiresAtMs)
    return configuredMs;
  return Math.min(configuredMs, (expiresAtMs - updatedAtMs) / 2);
}

/** `now >= expires_at - refreshBefore`; a Secret without a parseable `expires_at` is stale. */
export function isStale(times: SecretTimes, nowMs: number, configuredMs: number): boolean {
  if (times.expiresAtMs === undefined) return true;
  return nowMs >= times.expiresAtMs - refreshBeforeMs(times, configuredMs);
}
