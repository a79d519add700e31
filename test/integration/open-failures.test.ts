/**
 * The refresher writes only for stale Secrets: which RefreshFailed Events are open lives in its
 * part of the cluster record (its own DynamoDB item in moto, through the real SDK and the
 * refresher's own read and conditional write-back), so the recovery check is made only for a
 * Secret whose failure is open. The cluster is an in-memory stand-in for the API server calls the
 * refresher makes, counting them; the real kube-apiserver runs the same story in
 * test/e2e/refresher.e2e.test.ts. Last, what a token rotation made during a run leaves behind.
 */

import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { KMSClient } from "@aws-sdk/client-kms";
import { ApiException } from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { RecordStore } from "../../cli/adapters/aws.ts";
import { RefresherRecordTable } from "../../functions/adapters/cluster-record-catalog.ts";
import { ClusterRecordStore } from "../../functions/adapters/cluster-records.ts";
import { KubeconfigSeal } from "../../functions/adapters/kubeconfig-seal.ts";
import {
  type ClusterApi,
  KubernetesError,
  type ManagedSecret,
} from "../../functions/adapters/kubernetes.ts";
import { OPEN_FAILURES_LIMIT } from "../../functions/core/cluster-record.ts";
import { refresherConfigFromEnv } from "../../functions/core/config.ts";
import { contractNames } from "../../functions/core/contract.ts";
import { eventName } from "../../functions/core/events.ts";
import { toRfc3339 } from "../../functions/core/time.ts";
import { MARK_SLOT_MS, MarkBudget } from "../../functions/lib/mark-budget.ts";
import { refreshCluster } from "../../functions/refresher/refresh-cluster.ts";
import {
  localAwsEnv,
  putClusterRecord,
  readClusterRecordItems,
  testRecordKey,
} from "../../testbed/aws-env.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";
import { newWebhookToken } from "../support/admission.ts";

const HOUR = 3600_000;
const RECORDS = "open-failures-test";
const names = contractNames();
const FAILING = "ecr-anywhere.centml.ai/refresh-failing";
const DENIAL =
  'admission webhook "secrets.ecr-anywhere.centml.ai" denied the request: ecr-anywhere: AWS denied ecr:GetAuthorizationToken';
const config = refresherConfigFromEnv({ ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "true" });
const refresherKubeconfig = kubeconfig("https://127.0.0.1:6443", "ca", { name: "r", token: "t" });
let table: RefresherRecordTable;

interface StandInEvent {
  reason: string;
  regardingUid: string;
  annotations: Record<string, string>;
  count: number;
}

/** The API server calls of one cluster, in memory: Secrets, a webhook that may deny, Events. */
class Cluster {
  now = Date.now();
  readonly secrets = new Map<string, ManagedSecret>();
  readonly events = new Map<string, StandInEvent>();
  /** Names of Secrets whose mark the webhook denies. */
  readonly denied = new Set<string>();
  /** Namespaces whose list fails. */
  readonly unlistable = new Set<string>();
  readonly calls = { GET: 0, PATCH: 0, POST: 0 };
  /** Marks wait until this many lists were made (two runs that both listed before either marks). */
  marksAfterLists = 0;
  /** Runs once, at the first mark: something that happens in the middle of a refresher run. */
  duringRun: (() => Promise<void>) | undefined;
  #lists = 0;
  #listed: () => void = () => undefined;
  readonly #allListed = new Promise<void>((resolve) => {
    this.#listed = resolve;
  });

  add(name: string, expiresInMs: number, namespace = "team-a"): ManagedSecret {
    const secret = { namespace, name, uid: randomUUID(), resourceVersion: "1", annotations: {} };
    this.secrets.set(`${namespace}/${name}`, this.#stamped(secret, this.now + expiresInMs));
    return secret;
  }

  uid(name: string, namespace = "team-a"): string {
    return this.secrets.get(`${namespace}/${name}`)?.uid ?? "";
  }

  eventsAbout(name: string, reason: string): StandInEvent[] {
    const uid = this.uid(name);
    return [...this.events.values()].filter((e) => e.regardingUid === uid && e.reason === reason);
  }

  #stamped(secret: ManagedSecret, expiresAtMs: number): ManagedSecret {
    return {
      ...secret,
      annotations: {
        ...secret.annotations,
        [names.expiresAtAnnotation]: toRfc3339(expiresAtMs),
        [names.updatedAtAnnotation]: toRfc3339(expiresAtMs - 12 * HOUR),
      },
    };
  }

  api(): ClusterApi {
    const calls = this.calls;
    const fake = {
      get calls() {
        return calls.GET + calls.PATCH + calls.POST;
      },
      enabledNamespaces: async () => {
        calls.GET++;
        return [...new Set([...this.secrets.values()].map((secret) => secret.namespace))];
      },
      managedSecrets: async (namespace: string) => {
        calls.GET++;
        if (++this.#lists >= this.marksAfterLists) this.#listed();
        if (this.unlistable.has(namespace))
          throw new KubernetesError(`list Secrets in ${namespace}`, "HTTP 500");
        return [...this.secrets.values()].filter((secret) => secret.namespace === namespace);
      },
      annotate: async (namespace: string, name: string) => {
        calls.PATCH++;
        await this.#allListed;
        const during = this.duringRun;
        this.duringRun = undefined;
        await during?.();
        if (this.denied.has(name))
          throw new KubernetesError(
            `mark Secret ${namespace}/${name}`,
            new ApiException(400, "denied", JSON.stringify({ message: DENIAL }), {}),
          );
        const key = `${namespace}/${name}`;
        const secret = this.#stamped(this.secrets.get(key) as ManagedSecret, this.now + 12 * HOUR);
        this.secrets.set(key, secret);
        return secret;
      },
      createEvent: async (body: {
        metadata: { name: string; namespace: string; annotations: Record<string, string> };
        reason: string;
        regarding: { uid: string };
      }) => {
        calls.POST++;
        const key = `${body.metadata.namespace}/${body.metadata.name}`;
        if (this.events.has(key)) return "exists" as const;
        this.events.set(key, {
          reason: body.reason,
          regardingUid: body.regarding.uid,
          annotations: { ...body.metadata.annotations },
          count: 1,
        });
        return "created" as const;
      },
      patchEvent: async (
        namespace: string,
        name: string,
        body: { metadata?: { annotations?: Record<string, string> }; series?: { count: number } },
      ) => {
        calls.PATCH++;
        const event = this.events.get(`${namespace}/${name}`) as StandInEvent;
        Object.assign(event.annotations, body.metadata?.annotations);
        if (body.series) event.count = body.series.count;
        return { resourceVersion: "1", series: undefined };
      },
      flipEventAnnotation: async (namespace: string, name: string, annotation: string) => {
        calls.PATCH++;
        const event = this.events.get(`${namespace}/${name}`);
        if (!event) return "absent" as const;
        if (event.annotations[annotation] !== "true") return "unchanged" as const;
        event.annotations[annotation] = "false";
        return "flipped" as const;
      },
    };
    return fake as unknown as ClusterApi;
  }
}

async function putRecord(clusterId: string, extra: Record<string, unknown> = {}) {
  await putClusterRecord(
    inject("motoUrl"),
    {
      clusterId,
      kubeconfig: refresherKubeconfig,
      webhookTokenSha256: [newWebhookToken().sha256],
      registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
      ...extra,
    },
    { records: RECORDS },
  );
}

/** The refresher's item as stored now (kubeconfig opened): its state and its revision. */
async function stored(clusterId: string) {
  const { refresher: value = {} } = await readClusterRecordItems(inject("motoUrl"), clusterId, {
    records: RECORDS,
  });
  return {
    value,
    refresher: value.refresher as { openFailures?: string[]; untrackedSince?: string } | undefined,
    revision: value.revision,
  };
}

/** One run as the fan-out worker makes it: read the record, refresh, write back what changed. */
async function run(cluster: Cluster, clusterId: string) {
  const before = { ...cluster.calls };
  const record = await table.read(clusterId);
  const report = await refreshCluster(
    record,
    {
      config,
      now: () => cluster.now,
      clusterApi: () => cluster.api(),
      markBudget: new MarkBudget({ total: config.markConcurrency, slotMs: MARK_SLOT_MS }),
      saveRecord: (target, change, signal) => table.update(target, change, signal),
    },
    AbortSignal.timeout(20_000),
  );
  return {
    report,
    patches: cluster.calls.PATCH - before.PATCH,
    posts: cluster.calls.POST - before.POST,
  };
}

beforeAll(() => {
  Object.assign(
    process.env,
    localAwsEnv({ records: inject("motoUrl"), sts: inject("motoUrl"), ecr: inject("motoUrl") }),
  );
  table = new RefresherRecordTable({
    client: new DynamoDBClient({}),
    table: `${RECORDS}-refresher`,
    seal: new KubeconfigSeal(new KMSClient({}), undefined),
  });
});

describe("open failures in the refresher's part of the cluster record", () => {
  it("a healthy run makes exactly one PATCH per stale Secret and writes nothing to the record", async () => {
    await putRecord("healthy");
    const cluster = new Cluster();
    for (let i = 0; i < 20; i++) cluster.add(`s-${i}`, i < 5 ? HOUR : 11 * HOUR);
    const before = await stored("healthy");
    const { report, patches, posts } = await run(cluster, "healthy");
    expect(report).toMatchObject({ ok: true, secretsStale: 5, secretsRefreshed: 5 });
    expect(patches).toBe(5);
    expect(posts).toBe(0);
    expect((await stored("healthy")).revision).toBe(before.revision);
  });

  it("remembers a failed mark; the next successful refresh makes the recovery PATCH and records Refreshed once", async () => {
    await putRecord("recovers");
    const cluster = new Cluster();
    for (const name of ["s-1", "s-2", "s-3"]) cluster.add(name, HOUR);
    cluster.add("fresh", 11 * HOUR);

    // Run 1: s-1 and s-2 are denied: an Event each, remembered in the record.
    cluster.denied.add("s-1").add("s-2");
    const first = await run(cluster, "recovers");
    expect(first.report).toMatchObject({ ok: false, secretsStale: 3, refreshFailures: 2 });
    expect(first.patches).toBe(3); // the marks; s-3's refresh made no recovery check
    expect(first.posts).toBe(2); // the two RefreshFailed Events
    expect((await stored("recovers")).refresher?.openFailures?.sort()).toEqual(
      [cluster.uid("s-1"), cluster.uid("s-2")].sort(),
    );

    // Run 2: s-1 recovers, s-2 still fails.
    cluster.now += HOUR;
    cluster.denied.delete("s-1");
    const second = await run(cluster, "recovers");
    expect(second.report).toMatchObject({ secretsStale: 2, secretsRefreshed: 1 });
    // Two marks, s-1's recovery check, and s-2's Event counted again (annotations, series).
    expect(second.patches).toBe(2 + 1 + 2);
    expect(cluster.eventsAbout("s-1", "Refreshed")).toHaveLength(1);
    expect(cluster.eventsAbout("s-1", "RefreshFailed")[0]?.annotations[FAILING]).toBe("false");
    expect(cluster.eventsAbout("s-2", "RefreshFailed")[0]).toMatchObject({
      count: 2,
      annotations: { [FAILING]: "true" },
    });
    expect((await stored("recovers")).refresher?.openFailures).toEqual([cluster.uid("s-2")]);

    // Run 3: s-2 recovers; nothing is open any more, and the record's refresher part goes away.
    cluster.now += HOUR;
    cluster.denied.clear();
    const third = await run(cluster, "recovers");
    expect(third.report).toMatchObject({ ok: true, secretsStale: 1, secretsRefreshed: 1 });
    expect(third.patches).toBe(2);
    expect(cluster.eventsAbout("s-2", "Refreshed")).toHaveLength(1);
    const after = await stored("recovers");
    expect(after.refresher).toBeUndefined();

    // Run 4, everything stale: one PATCH each, no Event, no write to the record.
    cluster.now += 12 * HOUR;
    const fourth = await run(cluster, "recovers");
    expect(fourth.report).toMatchObject({ ok: true, secretsStale: 4, secretsRefreshed: 4 });
    expect(fourth.patches).toBe(4);
    expect(fourth.posts).toBe(0);
    expect(cluster.eventsAbout("s-1", "Refreshed")).toHaveLength(1);
    expect((await stored("recovers")).revision).toBe(after.revision);
  });

  it("stays bounded: past the limit it checks every refresh, as before, until a clean run", async () => {
    const cluster = new Cluster();
    // Failures remembered from earlier runs, on Secrets that are fresh now.
    const earlier = Array.from({ length: OPEN_FAILURES_LIMIT - 2 }, (_, i) =>
      cluster.add(`old-${i}`, 11 * HOUR),
    );
    await putRecord("bounded", {
      refresher: { openFailures: earlier.map((secret) => secret.uid) },
    });
    for (let i = 0; i < 5; i++) cluster.add(`new-${i}`, HOUR);
    for (let i = 0; i < 5; i++) cluster.denied.add(`new-${i}`);

    const failing = await run(cluster, "bounded");
    expect(failing.report.refreshFailures).toBe(5);
    const full = (await stored("bounded")).refresher;
    expect(full?.openFailures).toHaveLength(OPEN_FAILURES_LIMIT);
    expect(full?.untrackedSince).toBe(new Date(cluster.now).toISOString());

    // The marker makes every refreshed Secret get the recovery check; the run was clean, so it
    // clears the marker and the five closed failures.
    cluster.now += HOUR;
    cluster.denied.clear();
    const recovering = await run(cluster, "bounded");
    expect(recovering.report).toMatchObject({ ok: true, secretsRefreshed: 5 });
    expect(recovering.patches).toBe(5 + 5);
    for (let i = 0; i < 5; i++)
      expect(cluster.eventsAbout(`new-${i}`, "Refreshed")).toHaveLength(1);
    const after = (await stored("bounded")).refresher;
    expect(after?.untrackedSince).toBeUndefined();
    expect(after?.openFailures).toHaveLength(OPEN_FAILURES_LIMIT - 2);

    cluster.now += 2 * HOUR;
    for (let i = 0; i < 3; i++) cluster.add(`later-${i}`, HOUR);
    expect((await run(cluster, "bounded")).patches).toBe(3);
  });

  it("forgets the failures of Secrets that are gone, but not while a list fails", async () => {
    const cluster = new Cluster();
    const gone = cluster.add("gone", 11 * HOUR);
    const elsewhere = cluster.add("elsewhere", 11 * HOUR, "team-b");
    cluster.add("kept", 11 * HOUR);
    await putRecord("gone", { refresher: { openFailures: [gone.uid, elsewhere.uid] } });
    cluster.secrets.delete("team-a/gone");
    cluster.secrets.delete("team-b/elsewhere");
    cluster.add("other", 11 * HOUR, "team-b");

    // team-b cannot be listed: nothing is forgotten.
    cluster.unlistable.add("team-b");
    await run(cluster, "gone");
    expect((await stored("gone")).refresher?.openFailures).toEqual([gone.uid, elsewhere.uid]);

    cluster.unlistable.clear();
    await run(cluster, "gone");
    expect((await stored("gone")).refresher).toBeUndefined();
  });

  it("two runs at once: changes compose, and a failure that recovers gets one Refreshed Event", async () => {
    const cluster = new Cluster();
    const both = cluster.add("both", HOUR);
    await putRecord("concurrent", { refresher: { openFailures: [both.uid] } });
    const failure = eventName(
      { kind: "Secret", name: "both", namespace: "team-a", uid: both.uid },
      "RefreshFailed",
    );
    cluster.events.set(`team-a/${failure}`, {
      reason: "RefreshFailed",
      regardingUid: both.uid,
      annotations: { [FAILING]: "true" },
      count: 1,
    });
    const lonely = cluster.add("lonely", HOUR);
    cluster.denied.add("lonely");

    // Both read the same record and list before either marks: both refresh "both" and check it,
    // and "lonely" fails in both.
    cluster.marksAfterLists = 2;
    const [a, b] = await Promise.all([run(cluster, "concurrent"), run(cluster, "concurrent")]);
    expect(a.report.secretsRefreshed + b.report.secretsRefreshed).toBe(2);
    expect(cluster.eventsAbout("both", "Refreshed")).toHaveLength(1);
    expect((await stored("concurrent")).refresher?.openFailures).toEqual([lonely.uid]);
  });

  it("writes back around fields of its state it does not know, and keeps a kubeconfig written meanwhile", async () => {
    await putRecord("unknown-fields", { refresher: { later: { a: [1] } } });
    const read = await table.read("unknown-fields");
    const current = (await stored("unknown-fields")).value;
    // Written after the refresher read it (onboard): a newer kubeconfig, and the revision moves on.
    await putRecord("unknown-fields", {
      kubeconfig: `${refresherKubeconfig}\n# from onboard`,
      refresher: { later: { a: [1] } },
    });
    const uid = randomUUID();
    const written = await table.update(read, {
      kubeconfig: { from: read.record.kubeconfig, to: "renewed" },
      openFailures: { opened: [uid], closed: [], at: new Date().toISOString() },
    });
    // The conditional write lost to onboard's, so the change was applied to what is stored now.
    expect(written.revision).toBe(Number(current.revision) + 2);
    const after = (await stored("unknown-fields")).value;
    expect(after).toMatchObject({
      kubeconfig: `${refresherKubeconfig}\n# from onboard`,
      refresher: { later: { a: [1] }, openFailures: [uid] },
      revision: written.revision,
    });
  });
});

describe("a token rotation during a refresher run", () => {
  const EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
  const whole = (hash: string, extra: Record<string, unknown> = {}) => ({
    clusterId: "rotated",
    kubeconfig: refresherKubeconfig,
    webhookTokenSha256: [hash],
    registries: [EAST],
    ...extra,
  });

  /** What the webhook says to a token now (a new lookup: no cache). */
  async function webhookAccepts(token: string): Promise<boolean> {
    const records = new ClusterRecordStore({
      client: new DynamoDBClient({}),
      table: `${RECORDS}-webhook`,
      ttlMs: 60_000,
      now: Date.now,
      checkKnownNames: false,
    });
    const lookup = (await records.lookup("rotated", AbortSignal.timeout(10_000))).value;
    return lookup.found && lookup.record.webhookTokenSha256.includes(token);
  }

  it.each([
    ["changes only the webhook's item", {}],
    [
      "also changes the refresher's item (its revision moves on)",
      { ensure: { secretName: "ecr-pull", namespaces: ["team-a"] } },
    ],
  ])(
    "onboard --rotate-token's record change %s: the new hash stays, the old one stays gone",
    async (_, refresherChange) => {
      const [old, next] = ["0".repeat(64), "f".repeat(64)];
      const store = new RecordStore(RECORDS);
      const keyArn = await testRecordKey(inject("motoUrl"));
      await store.write(whole(old), keyArn, await store.read("rotated"));
      const cluster = new Cluster();
      cluster.add("stale", HOUR);
      cluster.denied.add("stale"); // a failure opens: the run writes its state back
      // In the middle of the run (after it read its record, before it writes back), the operator
      // replaces the token at once, as onboard --rotate-token does: read, then write the record.
      cluster.duringRun = async () => {
        const read = await store.read("rotated");
        await store.write(whole(next, refresherChange), keyArn, read);
      };
      const { report } = await run(cluster, "rotated");
      expect(report.refreshFailures).toBe(1);
      expect(cluster.duringRun).toBeUndefined(); // it did run, mid-refresh
      const items = await readClusterRecordItems(inject("motoUrl"), "rotated", {
        records: RECORDS,
      });
      expect(items.webhook?.webhookTokenSha256).toEqual([next]);
      expect(await webhookAccepts(next)).toBe(true);
      expect(await webhookAccepts(old)).toBe(false);
      // The refresher's write-back landed too, beside (not over) the operator's change.
      expect(items.refresher?.refresher).toEqual({ openFailures: [cluster.uid("stale")] });
      expect(items.refresher).toMatchObject(refresherChange);
      store.close();
    },
  );
});
