import { describe, expect, it } from "vitest";
import { ExpiringCache } from "../../functions/lib/expiring-cache.ts";

function clock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("ExpiringCache", () => {
  it("serves a value until its serve-until time, then loads again", async () => {
    const time = clock();
    const cache = new ExpiringCache<string, number>({ maxEntries: 10, now: time.now });
    let loads = 0;
    const load = async () => ({ value: ++loads, serveUntilMs: time.now() + 100 });
    expect(await cache.getOrLoad("k", load)).toEqual({ value: 1, source: "loaded" });
    time.advance(99);
    expect(await cache.getOrLoad("k", load)).toEqual({ value: 1, source: "cache" });
    time.advance(1);
    expect(await cache.getOrLoad("k", load)).toEqual({ value: 2, source: "loaded" });
  });

  it("shares one load between concurrent misses", async () => {
    const time = clock();
    const cache = new ExpiringCache<string, number>({ maxEntries: 10, now: time.now });
    let loads = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const load = async () => {
      loads++;
      await gate;
      return { value: 7, serveUntilMs: time.now() + 100 };
    };
    const pending = Array.from({ length: 50 }, () => cache.getOrLoad("k", load));
    release();
    const results = await Promise.all(pending);
    expect(loads).toBe(1);
    expect(results.filter((result) => result.source === "loaded")).toHaveLength(1);
    expect(results.filter((result) => result.source === "shared")).toHaveLength(49);
  });

  it("does not cache failures: every waiter sees the error, the next call retries", async () => {
    const time = clock();
    const cache = new ExpiringCache<string, number>({ maxEntries: 10, now: time.now });
    const failing = async () => {
      throw new Error("boom");
    };
    const results = await Promise.allSettled([
      cache.getOrLoad("k", failing),
      cache.getOrLoad("k", failing),
    ]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect(
      await cache.getOrLoad("k", async () => ({ value: 1, serveUntilMs: time.now() + 1 })),
    ).toEqual({ value: 1, source: "loaded" });
  });

  it("keeps at most maxEntries, dropping the oldest", async () => {
    const time = clock();
    const cache = new ExpiringCache<number, number>({ maxEntries: 3, now: time.now });
    for (let key = 0; key < 5; key++)
      await cache.getOrLoad(key, async () => ({ value: key, serveUntilMs: time.now() + 100 }));
    expect(cache.size).toBe(3);
    expect(
      (await cache.getOrLoad(0, async () => ({ value: -1, serveUntilMs: time.now() + 100 })))
        .source,
    ).toBe("loaded");
    expect(
      (await cache.getOrLoad(4, async () => ({ value: -1, serveUntilMs: time.now() + 100 })))
        .source,
    ).toBe("cache");
  });

  it("does not store a value that is already expired", async () => {
    const time = clock();
    const cache = new ExpiringCache<string, number>({ maxEntries: 3, now: time.now });
    await cache.getOrLoad("k", async () => ({ value: 1, serveUntilMs: time.now() }));
    expect(cache.size).toBe(0);
  });
});
