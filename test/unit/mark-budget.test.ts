/** The invocation's mark budget: fair shares, a global bound, and slots freed after their time. */
import { describe, expect, it, vi } from "vitest";
import { MarkBudget, SLOT_EXPIRED } from "../../functions/lib/mark-budget.ts";

const never = () => new Promise<never>(() => {});
const soon = <T>(value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), 10));

describe("MarkBudget", () => {
  it("never runs more than the total, across clusters", async () => {
    const budget = new MarkBudget({ total: 3, slotMs: 60_000 });
    let running = 0;
    let most = 0;
    const work = async () => {
      running++;
      most = Math.max(most, running);
      await soon(undefined);
      running--;
    };
    const shares = [budget.join(), budget.join()];
    await Promise.all(shares.flatMap((share) => Array.from({ length: 10 }, () => share.run(work))));
    expect(most).toBe(3);
    for (const share of shares) share.leave();
  });

  it("gives a cluster that joins later its share once the first one's slots free up", async () => {
    vi.useFakeTimers();
    try {
      const budget = new MarkBudget({ total: 4, slotMs: 1000 });
      const hung = budget.join();
      const hungMarks = Array.from({ length: 20 }, () => hung.run(never));
      expect(budget.active).toBe(4);
      const other = budget.join();
      const otherMarks = Array.from({ length: 20 }, () => other.run(never));
      // Slots are never taken back from a running mark: the other cluster waits for the slot time.
      await vi.advanceTimersByTimeAsync(999);
      expect(other.active).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      // Both wait for more: each holds its half.
      expect([hung.active, other.active]).toEqual([2, 2]);
      expect(await hungMarks[0]).toBe(SLOT_EXPIRED);
      await vi.advanceTimersByTimeAsync(20_000);
      expect(await Promise.all([...hungMarks, ...otherMarks])).toEqual(
        Array(40).fill(SLOT_EXPIRED),
      );
      other.leave();
      hung.leave();
    } finally {
      vi.useRealTimers();
    }
  });

  it("lets a cluster use slots nobody else is waiting for", async () => {
    const budget = new MarkBudget({ total: 4, slotMs: 60_000 });
    const busy = budget.join();
    const idle = budget.join();
    const marks = Array.from({ length: 4 }, () => busy.run(never));
    expect(busy.active).toBe(4);
    expect(idle.active).toBe(0);
    void marks;
    busy.leave();
    idle.leave();
  });

  it("passes errors through and frees the slot", async () => {
    const budget = new MarkBudget({ total: 1, slotMs: 60_000 });
    const share = budget.join();
    await expect(share.run(() => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(await share.run(async () => 7)).toBe(7);
    expect(budget.active).toBe(0);
    share.leave();
  });

  it("serves waiting clusters in turn, so one that joined last is not starved", async () => {
    const budget = new MarkBudget({ total: 4, slotMs: 60_000 });
    const order: string[] = [];
    const shares = ["A", "B", "C", "D", "E"].map((name) => ({ name, share: budget.join() }));
    await Promise.all(
      shares.flatMap(({ name, share }) =>
        Array.from({ length: 20 }, () =>
          share.run(async () => {
            order.push(name);
            await soon(undefined);
          }),
        ),
      ),
    );
    // Every cluster's first mark starts within the first two rounds of slots.
    expect(order.indexOf("E")).toBeLessThan(8);
    for (const { share } of shares) share.leave();
  });

  it("ends a mark's request when its slot expires", async () => {
    vi.useFakeTimers();
    try {
      const budget = new MarkBudget({ total: 1, slotMs: 1000 });
      const share = budget.join();
      let seen: AbortSignal | undefined;
      const mark = share.run((signal) => {
        seen = signal;
        return never();
      });
      await vi.advanceTimersByTimeAsync(1000);
      expect(await mark).toBe(SLOT_EXPIRED);
      expect(seen?.aborted).toBe(true);
      share.leave();
    } finally {
      vi.useRealTimers();
    }
  });
});
