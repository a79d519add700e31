/**
 * The invocation's budget of marks in flight (each mark is a webhook call), shared fairly: while
 * others wait, a cluster gets at most its share (the budget divided by the clusters marking, at
 * least one slot), so one cluster with thousands of stale Secrets, or one whose API server never
 * answers its PATCHes, cannot starve the others; a slot nobody else waits for is not left idle. A mark's slot is also freed once the webhook's own timeout
 * plus a margin has passed: by then the API server has given up calling the webhook, so the
 * webhook's concurrency stays bounded, and the mark is reported as failed.
 */

/**
 * A mark's slot: kube-apiserver gives the webhook `timeoutSeconds: 10`
 * (k8s/webhook-configuration.ts), plus a margin for the PATCH around that call.
 */
export const MARK_SLOT_MS = 15_000;

/** What a mark that outlived its slot resolves to. */
export const SLOT_EXPIRED = Symbol("slot expired");

export interface MarkBudgetOptions {
  /** Marks in flight at once, across every cluster of the invocation. */
  readonly total: number;
  /** How long a mark may hold its slot: the webhook's timeout plus a margin. */
  readonly slotMs: number;
}

interface Waiting {
  readonly start: () => void;
}

export class ClusterShare {
  readonly #budget: MarkBudget;
  active = 0;
  readonly queue: Waiting[] = [];

  constructor(budget: MarkBudget) {
    this.#budget = budget;
  }

  /**
   * Runs `mark` in one of this cluster's slots; `SLOT_EXPIRED` when it outlived the slot, whose end
   * also aborts the signal `mark` is given, so its request ends with it.
   */
  run<T>(mark: (signal: AbortSignal) => Promise<T>): Promise<T | typeof SLOT_EXPIRED> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        start: () => {
          let released = false;
          const slot = new AbortController();
          const release = () => {
            if (released) return;
            released = true;
            clearTimeout(timer);
            this.#budget.release(this);
          };
          const timer = setTimeout(() => {
            release();
            slot.abort(new Error("the mark's slot expired"));
            resolve(SLOT_EXPIRED);
          }, this.#budget.slotMs);
          mark(slot.signal).then(
            (value) => {
              release();
              resolve(value);
            },
            (error: unknown) => {
              release();
              reject(error);
            },
          );
        },
      });
      this.#budget.dispatch();
    });
  }

  /** How long one of its marks may hold a slot. */
  get slotMs(): number {
    return this.#budget.slotMs;
  }

  /** The cluster is done: its share goes back to the others. */
  leave(): void {
    this.#budget.leave(this);
  }
}

export class MarkBudget {
  readonly #total: number;
  readonly slotMs: number;
  readonly #shares = new Set<ClusterShare>();
  #active = 0;

  constructor(options: MarkBudgetOptions) {
    this.#total = Math.max(1, Math.floor(options.total));
    this.slotMs = options.slotMs;
  }

  /** A cluster starts marking: it gets a share until it calls `leave`. */
  join(): ClusterShare {
    const share = new ClusterShare(this);
    this.#shares.add(share);
    return share;
  }

  /** Slots one cluster may hold now. */
  shareSize(): number {
    return Math.max(1, Math.floor(this.#total / Math.max(1, this.#shares.size)));
  }

  /** Marks in flight now, across every cluster. */
  get active(): number {
    return this.#active;
  }

  release(share: ClusterShare): void {
    share.active--;
    this.#active--;
    this.dispatch();
  }

  leave(share: ClusterShare): void {
    this.#shares.delete(share);
    this.dispatch();
  }

  /**
   * Starts waiting marks, one per cluster per round, first within each cluster's share; slots no
   * cluster under its share is waiting for then go to the others, so the budget is never idle
   * while marks wait.
   */
  dispatch(): void {
    while (this.#active < this.#total) {
      const size = this.shareSize();
      if (this.#round((share) => share.active < size)) continue;
      if (!this.#round(() => true)) return;
    }
  }

  /** One mark for each waiting cluster `eligible` accepts, while slots remain; false if none. */
  #round(eligible: (share: ClusterShare) => boolean): boolean {
    let started = false;
    for (const share of [...this.#shares]) {
      if (this.#active >= this.#total) break;
      if (share.queue.length === 0 || !eligible(share)) continue;
      const next = share.queue.shift();
      if (!next) continue;
      share.active++;
      this.#active++;
      started = true;
      // Served: to the back of the line, so a freed slot goes to the cluster that waited longest.
      this.#shares.delete(share);
      this.#shares.add(share);
      next.start();
    }
    return started;
  }
}
