/**
 * How many failed authentications one source address may cost in a window. A caller past its
 * budget is refused before any lookup, so one address sending made-up cluster ids or guessing
 * tokens costs a Map entry, not AWS calls. Per execution environment, bounded in size.
 */
export interface SourceBudgetOptions {
  /** Failures a source may have per window before it is refused outright. */
  readonly failuresPerWindow: number;
  readonly windowMs: number;
  /** Sources remembered at once; the oldest are forgotten first. */
  readonly maxSources: number;
  readonly now: () => number;
}

interface Window {
  startedAtMs: number;
  failures: number;
}

export class SourceBudget {
  readonly #options: SourceBudgetOptions;
  readonly #windows = new Map<string, Window>();

  constructor(options: SourceBudgetOptions) {
    this.#options = options;
  }

  /** True when the source has used up its failures for this window. */
  exhausted(source: string): boolean {
    const window = this.#current(source);
    return window !== undefined && window.failures >= this.#options.failuresPerWindow;
  }

  /** Counts one failure; true when it is the one that used the budget up (log it once). */
  failed(source: string): boolean {
    const window = this.#current(source) ?? this.#open(source);
    window.failures++;
    return window.failures === this.#options.failuresPerWindow;
  }

  #current(source: string): Window | undefined {
    const window = this.#windows.get(source);
    if (window === undefined) return undefined;
    if (this.#options.now() - window.startedAtMs < this.#options.windowMs) return window;
    this.#windows.delete(source);
    return undefined;
  }

  #open(source: string): Window {
    const window = { startedAtMs: this.#options.now(), failures: 0 };
    this.#windows.set(source, window);
    while (this.#windows.size > this.#options.maxSources) {
      const oldest = this.#windows.keys().next();
      if (oldest.done) break;
      this.#windows.delete(oldest.value);
    }
    return window;
  }
}
