/** How long ECR credentials are claimed to live, and how long a cached token may be reused. Pure. */

/** Never serve a cached token (or assumed-role session) with less than this left. */
export const MINIMUM_REMAINING_MS = 5 * 60_000;

/** ECR's documented token lifetime (GetAuthorizationToken: "valid for 12 hours"). */
export const ECR_TOKEN_LIFETIME_MS = 12 * 3600_000;

/**
 * The expiry to record: ECR's `expiresAt`, capped by the expiry of the credentials that minted the
 * token when those are known (an assumed role's or a federated session). A token minted with
 * temporary credentials is planned to live no longer than their session (docs/contract.md, "Token
 * scoping"), so neither is claimed beyond the other.
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

/**
 * Until when session credentials fetched at `fetchedAtMs` may mint tokens: while a token minted
 * from them still gets ECR's full 12 hours (plus the minimum margin), or, for a session too short
 * for that (a 1 h role session), while half the session remains. A 36 h federated session mints for
 * its first 24 h less the margin, every token with its full 12 h; a 1 h role session for 30 min.
 */
export function credentialsReuseUntil(
  fetchedAtMs: number,
  expiresAtMs: number,
  minimumRemainingMs = MINIMUM_REMAINING_MS,
): number {
  const halfLife = (expiresAtMs - fetchedAtMs) / 2;
  const wanted = Math.min(ECR_TOKEN_LIFETIME_MS + minimumRemainingMs, halfLife);
  return expiresAtMs - Math.max(minimumRemainingMs, wanted);
}
