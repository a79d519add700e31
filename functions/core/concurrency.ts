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

/**
 * Marks in flight a one-cluster invocation of the refresher (`ecr-anywhere onboard`'s check) may
 * take: one slot, carved out of the refresher's budget, so the check and the scheduled run never
 * exceed the budget together.
 */
export const CHECK_MARK_SHARE = 1;

export interface MarkSplit {
  /** Each scheduled runner's marks in flight: the inline run's, or each fan-out worker's. */
  readonly perRunner: number;
  /** The one-cluster check's: `CHECK_MARK_SHARE`, or 0 when the budget has no slot to spare. */
  readonly check: number;
}

/**
 * The refresher's budget split statically between its scheduled runners (the inline run, or the
 * `runners` fan-out workers at most at once) and the one-cluster check, so the two together never
 * exceed `budget`. The check takes its slot from what dividing the budget among the runners leaves
 * over, or from the inline run's share, where that costs just the one slot; otherwise (fan-out
 * with nothing left over) it gets none and marks nothing: it counts stale Secrets and leaves them
 * to the scheduled run, which is due within one refresh interval anyway.
 */
export function markSplit(budget: number, runners: number): MarkSplit {
  const perRunner = Math.max(1, Math.floor(budget / runners));
  if (budget - perRunner * runners >= CHECK_MARK_SHARE)
    return { perRunner, check: CHECK_MARK_SHARE };
  if (runners === 1 && perRunner > CHECK_MARK_SHARE)
    return { perRunner: perRunner - CHECK_MARK_SHARE, check: CHECK_MARK_SHARE };
  return { perRunner, check: 0 };
}
