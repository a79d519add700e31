/**
 * Strangers cost almost nothing: requests naming cluster ids no record has are refused without a
 * DynamoDB read each (one keys-only listing of known ids per TTL instead), never enter the record
 * cache, and one source address past its budget is refused before any lookup.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ClusterRecordStore } from "../../functions/adapters/cluster-records.ts";
import { EcrTokenProvider } from "../../functions/adapters/ecr-tokens.ts";
import { webhookConfigFromEnv } from "../../functions/core/config.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { createWebhook } from "../../functions/webhook/webhook.ts";
import { localAwsEnv, putClusterRecord, recordTablesEnv } from "../../testbed/aws-env.ts";
import { type EcrStandIn, startEcrStandIn } from "../../testbed/ecr-stand-in.ts";
import {
  admissionReview,
  clusterRecord,
  newWebhookToken,
  webhookEvent,
} from "../support/admission.ts";
import { restoreEnv } from "../support/env.ts";

const motoUrl = inject("motoUrl");
const savedEnv = { ...process.env };
const real = newWebhookToken();
let ecr: EcrStandIn;

beforeAll(async () => {
  ecr = await startEcrStandIn();
  Object.assign(
    process.env,
    localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: ecr.url }),
    recordTablesEnv("strangers-test"),
    { POWERTOOLS_LOG_LEVEL: "SILENT" },
  );
  await putClusterRecord(motoUrl, clusterRecord("real", real.sha256), {
    records: "strangers-test",
  });
  // Offboarded: listed by a scan like any item, but not as a known id.
  await putClusterRecord(
    motoUrl,
    { ...clusterRecord("gone", real.sha256), deletedAt: 1 },
    {
      records: "strangers-test",
    },
  );
});

afterAll(async () => {
  await ecr.stop();
  restoreEnv(savedEnv);
});

function setup(checkKnownNames: boolean, maxEntries = 1000) {
  const config = webhookConfigFromEnv(process.env);
  const now = Date.now;
  const records = new ClusterRecordStore({
    client: new DynamoDBClient({}),
    table: config.webhookRecordTable,
    ttlMs: config.recordTtlMs,
    now,
    maxEntries,
    checkKnownNames,
  });
  const webhook = createWebhook({
    config,
    now,
    records,
    telemetry: createTelemetry("ecr-anywhere-webhook"),
    tokens: new EcrTokenProvider({ sts: new STSClient({}), now }),
  });
  const call = (clusterId: string, token: string, sourceIp: string) =>
    webhook(webhookEvent({ clusterId, token, body: admissionReview(), sourceIp }));
  return { records, call };
}

const stranger = (i: number) => `stranger-${i}`;
const sourceOf = (i: number) => `198.51.100.${i % 250}`;

describe("unknown cluster ids", () => {
  it("do not slow a real cluster's cold start: no listing until a stranger calls", async () => {
    const { records, call } = setup(true);
    expect((await call("real", real.token, "203.0.113.1")).statusCode).toBe(200);
    expect(records.calls).toEqual({ reads: 1, lists: 0 });
  });

  it("cost one read and one listing per TTL instead of a read each, and cannot evict the real clusters' records", async () => {
    const { records, call } = setup(true, 50);
    expect((await call("real", real.token, "203.0.113.1")).statusCode).toBe(200);
    for (let i = 0; i < 500; i++)
      expect((await call(stranger(i), real.token, sourceOf(i))).statusCode).toBe(403);
    // The real cluster's read, and the first stranger's, which set off the one listing.
    expect(records.calls).toEqual({ reads: 2, lists: 1 });
    // The real cluster's record is still cached: no read for it either.
    expect((await call("real", real.token, "203.0.113.1")).statusCode).toBe(200);
    expect(records.calls.reads).toBe(2);
    // An offboarded id is not a known one: refused without a read while the listing is fresh.
    expect((await call("gone", real.token, "198.51.100.1")).statusCode).toBe(403);
    expect(records.isKnown("gone")).toBe(false);
    expect(records.calls).toEqual({ reads: 2, lists: 1 });
  });

  it("before: each cost a read, and a flood larger than the cache evicted the real record", async () => {
    const { records, call } = setup(false, 50);
    await call("real", real.token, "203.0.113.1");
    for (let i = 0; i < 100; i++) await call(stranger(i), real.token, sourceOf(i));
    expect(records.calls.reads).toBe(101);
    await call("real", real.token, "203.0.113.1");
    expect(records.calls.reads).toBe(102);
  });
});

describe("one source address", () => {
  it("is refused before any lookup once it spent its budget, while a known cluster from it still works", async () => {
    const { records, call } = setup(true);
    await call("real", real.token, "203.0.113.9"); // the real cluster, also known by name
    for (let i = 0; i < 30; i++) await call(stranger(i), real.token, "203.0.113.9");
    const lists = records.calls.lists;
    // Past the budget: strangers from there are refused outright (the listing is not even consulted).
    for (let i = 30; i < 200; i++)
      expect((await call(stranger(i), real.token, "203.0.113.9")).statusCode).toBe(403);
    expect(records.calls.lists).toBe(lists);
    expect((await call("real", real.token, "203.0.113.9")).statusCode).toBe(200);
    // A wrong token for a known cluster does not spend the budget: nobody can lock a cluster out.
    const other = setup(true);
    for (let i = 0; i < 100; i++) await other.call("real", newWebhookToken().token, "203.0.113.7");
    expect((await other.call("real", real.token, "203.0.113.7")).statusCode).toBe(200);
  });
});
