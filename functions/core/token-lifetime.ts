/** How long ECR credentials are claimed to live, and how long a cached token may be reused. Pure. */

/** Never serve a cached token (or assumed-role session) with less than this left. */
export const MINIMUM_REMAINING_MS = 5 * 60_000;

/**
 * The expiry to record: ECR's `expiresAt`, capped by the expiry of the credentials that minted the
 * token when those are known (an assumed role). Whether a token outlives its session is not
 * documented, so neither is claimed.
 */
export function tokenExpiry(ecrExpiresAtMs: number, credentialsExpireAtMs?: number): number {
  return credentialsExpireAtMs === undefined
    ? ecrExpiresAtMs
    : Math.min(ecrExpiresAtMs, credentialsExpireAtMs);
}

/**
 * Until when a token fetched at `fetchedAtMs` may be served from cache: while at least half its
 * life (and never less than the minimum) remains. Every Secret written then holds credentials good
 * for at least half a lifetime, so the refresher's staleness rule never meets a Secret that is stale
 * the moment it is written.
 */
export function reuseUntil(
  fetchedAtMs: number,
  expiresAtMs: number,
  minimumRemainingMs = MINIMUM_REMAINING_MS,
): number {
  return expiresAtMs - Math.max(minimumRemainingMs, (expiresAtMs - fetchedAtMs) / 2);
}
