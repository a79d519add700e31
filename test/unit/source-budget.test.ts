import { describe, expect, it } from "vitest";
import { SourceBudget } from "../../functions/lib/source-budget.ts";

describe("SourceBudget", () => {
  let now = 0;
  const budget = () =>
    new SourceBudget({ failuresPerWindow: 3, windowMs: 60_000, maxSources: 2, now: () => now });

  it("is exhausted at the limit, says so once, and recovers when the window ends", () => {
    now = 0;
    const sources = budget();
    expect([sources.failed("a"), sources.failed("a"), sources.failed("a")]).toEqual([
      false,
      false,
      true,
    ]);
    expect(sources.exhausted("a")).toBe(true);
    expect(sources.failed("a")).toBe(false); // past the limit: not reported again
    expect(sources.exhausted("b")).toBe(false);
    now = 60_000;
    expect(sources.exhausted("a")).toBe(false);
  });

  it("remembers a bounded number of sources, forgetting the oldest", () => {
    now = 0;
    const sources = budget();
    for (let i = 0; i < 3; i++) sources.failed("old");
    sources.failed("b");
    sources.failed("c");
    expect(sources.exhausted("old")).toBe(false);
  });
});
