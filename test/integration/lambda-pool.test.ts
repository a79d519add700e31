/** The Lambda-faithful pool: isolation, one request at a time, cold starts, throttling, reuse, reclaim. */
import { afterEach, describe, expect, it } from "vitest";
import { LambdaPool, THROTTLED } from "../../functions/local/lambda-pool.ts";
import type { FunctionUrlEvent } from "../../functions/webhook/http.ts";

const probe = "test/support/probe-handler.ts";
let pool: LambdaPool | undefined;

interface ProbeAnswer {
  environmentId: string;
  invocations: number;
  overlapped: boolean;
  env?: string;
}

async function invoke(delayMs: number | "throw" = 0) {
  const result = await pool?.handler({ body: String(delayMs) } as FunctionUrlEvent, {
    awsRequestId: "r",
  });
  return result;
}

function answer(result: Awaited<ReturnType<typeof invoke>>): ProbeAnswer {
  return JSON.parse(String(result?.body)) as ProbeAnswer;
}

afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe("Lambda pool", () => {
  it("runs concurrent requests in separate cold environments that share nothing, one request each", async () => {
    pool = new LambdaPool({
      module: probe,
      reservedConcurrency: 5,
      env: { PROBE_SETTING: "from-pool" },
      output: "ignore",
    });
    const results = (await Promise.all([invoke(300), invoke(300), invoke(300)])).map(answer);
    expect(new Set(results.map((result) => result.environmentId)).size).toBe(3);
    expect(results.every((result) => result.invocations === 1 && !result.overlapped)).toBe(true);
    expect(results[0]?.env).toBe("from-pool");
    expect(pool.stats).toMatchObject({
      environmentsStarted: 3,
      invocations: 3,
      throttles: 0,
      peakConcurrency: 3,
      live: 3,
    });
  });

  it("reuses a warm environment, keeping its module state", async () => {
    pool = new LambdaPool({ module: probe, reservedConcurrency: 5, output: "ignore" });
    const first = answer(await invoke());
    const second = answer(await invoke());
    expect(second.environmentId).toBe(first.environmentId);
    expect(second.invocations).toBe(2);
    expect(pool.stats.environmentsStarted).toBe(1);
  });

  it("answers Lambda's 429, without Retry-After, past the reserved concurrency", async () => {
    pool = new LambdaPool({ module: probe, reservedConcurrency: 2, output: "ignore" });
    const results = await Promise.all([invoke(400), invoke(400), invoke(0), invoke(0)]);
    expect(results.filter((result) => result?.statusCode === 200)).toHaveLength(2);
    const throttled = results.filter((result) => result?.statusCode === 429);
    expect(throttled).toHaveLength(2);
    expect(throttled[0]).toEqual(THROTTLED);
    expect(Object.keys(throttled[0]?.headers ?? {})).not.toContain("retry-after");
    expect(pool.stats).toMatchObject({ environmentsStarted: 2, throttles: 2 });
    // Capacity comes back as environments finish.
    expect((await invoke())?.statusCode).toBe(200);
  });

  it("answers a failed invocation with 502 and keeps the environment", async () => {
    pool = new LambdaPool({ module: probe, reservedConcurrency: 1, output: "ignore" });
    expect((await invoke("throw"))?.statusCode).toBe(502);
    expect((await invoke())?.statusCode).toBe(200);
    expect(pool.stats.environmentsStarted).toBe(1);
  });

  it("reclaims idle environments, so the next request starts cold", async () => {
    pool = new LambdaPool({ module: probe, reservedConcurrency: 2, idleMs: 200, output: "ignore" });
    const first = answer(await invoke());
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(pool.stats.live).toBe(0);
    const second = answer(await invoke());
    expect(second.environmentId).not.toBe(first.environmentId);
    expect(pool.stats.environmentsStarted).toBe(2);
  });

  it("answers 429 past 10 x the reserved concurrency requests in a second, as a function URL does", async () => {
    let nowMs = 0;
    pool = new LambdaPool({
      module: probe,
      reservedConcurrency: 1,
      output: "ignore",
      now: () => nowMs,
    });
    const statuses: number[] = [];
    // One at a time: concurrency never runs out, only the rate can.
    for (let index = 0; index < 15; index++) {
      nowMs = index * 10;
      statuses.push((await invoke())?.statusCode ?? 0);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(statuses.slice(10)).toEqual(Array(5).fill(429));
    expect(pool.stats).toMatchObject({ throttles: 5, rateThrottles: 5, environmentsStarted: 1 });
    // Once the first requests are a second old, the window has room again.
    nowMs = 1000;
    expect((await invoke())?.statusCode).toBe(200);
  });
});
