/**
 * Lambda concurrency the stack asks of an account: shared by the construct (which sets it) and
 * `ecr-anywhere preflight` (which checks an account can give it). Pure.
 */

/**
 * The refresher's marks in flight by default. A mark holds a webhook environment for one
 * admission (a PATCH round trip), so 10 in flight mark on the order of a hundred Secrets a second,
 * far more than a run needs, while a refresh takes at most 10 of the account's concurrency from
 * everything else.
 * The function's own default is the same (functions/core/config.ts).
 */
export const DEFAULT_MARK_CONCURRENCY = 10;

/** Lambda refuses a reservation that leaves the account fewer unreserved executions than this. */
export const LAMBDA_MIN_UNRESERVED = 100;

/**
 * The most marks a webhook reservation leaves room for: half of it, so a refresh leaves the rest
 * to the users' own writes and never throttles them.
 */
export function maxMarkConcurrency(reserved: number): number {
  return Math.max(1, Math.floor(reserved / 2));
}

/** The chosen mark concurrency, or the default (lowered to fit a small reservation). */
export function markConcurrencyFor(
  reserved: number | undefined,
  chosen: number | undefined,
): number {
  if (chosen !== undefined) return chosen;
  if (reserved === undefined) return DEFAULT_MARK_CONCURRENCY;
  return Math.min(DEFAULT_MARK_CONCURRENCY, maxMarkConcurrency(reserved));
}
