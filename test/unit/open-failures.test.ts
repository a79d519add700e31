/**
 * The refresher's own part of a cluster record: which RefreshFailed Events it left open. Pure:
 * reading it tolerantly, merging one run's change into what is stored now, the bound, and a
 * write-back that keeps every field the refresher does not own.
 */
import { describe, expect, it } from "vitest";
import {
  applyRefresherChange,
  mergeOpenFailures,
  OPEN_FAILURES_LIMIT,
  type OpenFailuresChange,
  parseRefresherItem,
  parseWebhookItem,
  readOpenFailures,
  splitClusterRecord,
} from "../../functions/core/cluster-record.ts";

const uid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const at = "2026-11-24T00:00:00.000Z";
const change = (fields: Partial<OpenFailuresChange>): OpenFailuresChange => ({
  opened: [],
  closed: [],
  at,
  ...fields,
});
const record = {
  clusterId: "prod",
  kubeconfig: "apiVersion: v1",
  webhookTokenSha256: ["a".repeat(64)],
  registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
};

describe("the refresher's open failures", () => {
  it("reads nothing as nothing, and anything unreadable as 'unknown' (every refresh checked)", () => {
    expect(readOpenFailures(undefined)).toEqual({ uids: [] });
    expect(readOpenFailures({ openFailures: [uid(1), uid(1), uid(2)] })).toEqual({
      uids: [uid(1), uid(2)],
    });
    for (const junk of [5, "x", [], { openFailures: "x" }, { openFailures: [""] }, null])
      expect(readOpenFailures(junk)).toEqual({ uids: [], untrackedSince: "unreadable" });
    const tooMany = Array.from({ length: OPEN_FAILURES_LIMIT + 1 }, (_, i) => uid(i));
    expect(readOpenFailures({ openFailures: tooMany })).toEqual({
      uids: tooMany.slice(0, OPEN_FAILURES_LIMIT),
      untrackedSince: "unreadable",
    });
  });

  it("is bounded: what does not fit sets the marker instead of growing the list", () => {
    const opened = Array.from({ length: OPEN_FAILURES_LIMIT + 44 }, (_, i) => uid(i));
    const merged = mergeOpenFailures({ uids: [] }, change({ opened }));
    expect(merged.uids).toHaveLength(OPEN_FAILURES_LIMIT);
    expect(merged.uids).toEqual(opened.slice(0, OPEN_FAILURES_LIMIT));
    expect(merged.untrackedSince).toBe(at);
    // The refresher's item stays far below DynamoDB's 400 KB (and Secrets Manager's 64 KB).
    const full = applyRefresherChange(record, { openFailures: change({ opened }) });
    expect(JSON.stringify(full).length).toBeLessThan(11 * 1024);
  });

  it("merges one run's additions and removals into what another run stored meanwhile", () => {
    // Both runs read [1, 2]; run A opened 3 and wrote [1, 2, 3]; run B closed 1 and opened 4.
    const stored = mergeOpenFailures({ uids: [uid(1), uid(2)] }, change({ opened: [uid(3)] }));
    const merged = mergeOpenFailures(stored, change({ opened: [uid(4)], closed: [uid(1)] }));
    expect(merged).toEqual({ uids: [uid(2), uid(3), uid(4)] });
  });

  it("clears the marker only for the run that read that same marker", () => {
    const marked = { uids: [uid(1)], untrackedSince: "2026-11-23T00:00:00.000Z" };
    expect(mergeOpenFailures(marked, change({ clears: marked.untrackedSince }))).toEqual({
      uids: [uid(1)],
    });
    // Another run set a newer marker after this one read the old: it stays.
    const newer = { ...marked, untrackedSince: "2026-11-23T12:00:00.000Z" };
    expect(mergeOpenFailures(newer, change({ clears: marked.untrackedSince }))).toEqual(newer);
  });

  it("writes back only its own fields, keeps every other one, and nothing when nothing changes", () => {
    const stored = { ...record, refresher: { later: "kept" }, laterField: { a: 1 } };
    const next = applyRefresherChange(stored, { openFailures: change({ opened: [uid(7)] }) });
    expect(next).toEqual({
      ...stored,
      refresher: { later: "kept", openFailures: [uid(7)] },
    });
    // Closing the last one removes the list; an empty refresher part goes away.
    const closed = applyRefresherChange(
      { ...record, refresher: { openFailures: [uid(7)] } },
      { openFailures: change({ closed: [uid(7)] }) },
    );
    expect(closed).toEqual(record);
    expect(applyRefresherChange(record, { openFailures: change({ closed: [uid(7)] }) })).toBe(
      undefined,
    );
  });

  it("renews the kubeconfig only while the record still holds the one it renewed", () => {
    const renewed = { kubeconfig: { from: record.kubeconfig, to: "renewed" } };
    expect(applyRefresherChange(record, renewed)?.kubeconfig).toBe("renewed");
    // onboard wrote a newer kubeconfig meanwhile: it stays, and nothing is written.
    expect(applyRefresherChange({ ...record, kubeconfig: "from onboard" }, renewed)).toBe(
      undefined,
    );
  });

  it("never makes the webhook refuse a record, nor its own item invalid, whatever the refresher's part holds", () => {
    const { webhook } = splitClusterRecord(record);
    const sealed = {
      alg: "AES-256-GCM",
      edk: "ZWRr",
      iv: Buffer.alloc(12).toString("base64"),
      tag: Buffer.alloc(16).toString("base64"),
      ct: "",
    };
    for (const refresher of [{ openFailures: [uid(1)] }, "junk", { future: true }]) {
      // The webhook's item has no place for it at all: its part is another item.
      expect(parseWebhookItem({ layout: 2, ...webhook }).ok).toBe(true);
      const item = { layout: 2, clusterId: "prod", kubeconfig: sealed, revision: 1, refresher };
      expect(parseRefresherItem(item).ok).toBe(true);
    }
  });
});
