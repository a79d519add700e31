import { describe, expect, it } from "vitest";
import { CHECK_MARK_SHARE, markSplit } from "../../functions/core/concurrency.ts";
import { parseRefresherEvent } from "../../functions/core/refresher-event.ts";
import { SCHEDULED_EVENT } from "../../testbed/lambda-stand-in.ts";

describe("the refresher's events", () => {
  it("runs the whole fleet on EventBridge's scheduled event", () => {
    expect(parseRefresherEvent(SCHEDULED_EVENT)).toEqual({
      ok: true,
      value: { kind: "scheduled" },
    });
  });

  it("refreshes one cluster on {clusterId}", () => {
    expect(parseRefresherEvent({ clusterId: "gke-prod" })).toEqual({
      ok: true,
      value: { kind: "one-cluster", clusterId: "gke-prod" },
    });
  });

  it.each([
    [{}, /^expected EventBridge's scheduled event/],
    [null, /^expected /],
    ["gke-prod", /^expected /],
    [{ ...SCHEDULED_EVENT, "detail-type": "Object Created" }, /^expected /],
    [{ ...SCHEDULED_EVENT, source: "my.app" }, /^expected /],
    [
      { clusterId: "Bad_Id" },
      /^a one-cluster event: clusterId: a cluster id \(a DNS-1123 label\)$/,
    ],
    [{ clusterId: 7 }, /^a one-cluster event: clusterId: expected string/],
    // A one-cluster event with anything more is not guessed at.
    [{ clusterId: "gke-prod", all: true }, /^a one-cluster event: all: /],
  ])("refuses %j", (event, error) => {
    const parsed = parseRefresherEvent(event);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(error);
  });

  it("never echoes what it refused", () => {
    const parsed = parseRefresherEvent({ clusterId: "secret-TOKEN-value" });
    expect(JSON.stringify(parsed)).not.toContain("TOKEN");
  });
});

describe("the mark budget's static split", () => {
  it.each([
    // budget, scheduled runners (1 inline, fan-out workers), each runner's share, the check's
    // Inline: the check's slot costs the run one slot.
    [10, 1, 9, CHECK_MARK_SHARE],
    [2, 1, 1, 1],
    [1, 1, 1, 0],
    // Fan-out: from what the division leaves over, never a slot from every worker.
    [11, 10, 1, 1],
    [45, 20, 2, 1],
    [40, 20, 2, 0],
    [10, 10, 1, 0],
    [5, 2, 2, 1],
  ])("budget %i over %i runner(s): %i each, %i for the check", (budget, runners, each, check) => {
    const split = markSplit(budget, runners);
    expect(split).toEqual({ perRunner: each, check });
    // The point of it: the scheduled run and the check never exceed the budget together.
    expect(split.perRunner * runners + split.check).toBeLessThanOrEqual(budget);
  });
});
