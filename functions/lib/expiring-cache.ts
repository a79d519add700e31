/**
 * A bounded in-memory cache whose entries carry their own expiry, with single-flight loading:
 * concurrent misses for one key share one load, so a burst of cold admissions makes one AWS call.
 * Failed loads are not cached.
 */
export interface Expiring<V> {
  readonly value: V;
  /** Epoch ms after which the cached value must not be served. */
  readonly serveUntilMs: number;
}

export type CacheSource = "cache" | "shared" | "loaded";

export class ExpiringCache<K, V> {
  readonly #entries = new Map<K, Expiring<V>>();
  readonly #inFlight = new Map<K, Promise<V>>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { readonly maxEntries: number; readonly now: () => number }) {
    this.#maxEntries = options.maxEntries;
    this.#now = options.now;
  }

  async getOrLoad(
    key: K,
    load: () => Promise<Expiring<V>>,
  ): Promise<{ value: V; source: CacheSource }> {
    const cached = this.#entries.get(key);
    if (cached !== undefined) {
      if (this.#now() < cached.serveUntilMs) return { value: cached.value, source: "cache" };
      this.#entries.delete(key);
    }
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return { value: await pending, source: "shared" };

    const loading = load().then((loaded) => {
      this.#store(key, loaded);
      return loaded.value;
    });
    this.#inFlight.set(key, loading);
    try {
      return { value: await loading, source: "loaded" };
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /** Forgets a cached value (a load in flight still completes and is stored). */
  delete(key: K): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  #store(key: K, loaded: Expiring<V>): void {
    if (loaded.serveUntilMs <= this.#now()) return;
    this.#entries.delete(key);
    this.#entries.set(key, loaded);
    // Maps iterate in insertion order, so the first key is the oldest write.
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }
}
