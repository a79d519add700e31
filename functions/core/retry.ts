/**
 * When a refresher mark is worth retrying, and how long to wait first. Pure.
 *
 * A mark is a PATCH the API server sends through the webhook; when the webhook's function is
 * throttled (Lambda's 429 carries no Retry-After, so kube-apiserver does not retry it) or ECR
 * throttles the token call, the write fails now and would succeed a moment later.
 */

// What kube-apiserver and the webhook say when the cause is load, not a lasting fault.
const TRANSIENT = [
  /status code 429/i, // the function URL throttled the webhook call
  /Too Many Requests/i, // the API server's own priority and fairness
  /Rate Exceeded/i,
  /ECR is throttling/i, // the webhook's denial when ECR throttled GetAuthorizationToken
  /status code 503/i, // the webhook could not read its record table
];

export function isTransientMarkFailure(status: number | undefined, message: string): boolean {
  return status === 429 || TRANSIENT.some((pattern) => pattern.test(message));
}

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

export const MARK_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 8000 };

/**
 * "Full jitter" exponential backoff: a uniform wait up to base x 2^attempt (capped), so marks that
 * were throttled together do not come back together.
 */
export function backoffMs(attempt: number, random: number, policy = MARK_BACKOFF): number {
  return Math.floor(random * Math.min(policy.capMs, policy.baseMs * 2 ** attempt));
}
