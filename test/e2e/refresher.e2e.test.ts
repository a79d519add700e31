/**
 * The refresher against a real kube-apiserver, running as its own ServiceAccount with only the
 * RBAC in k8s/, and the webhook behind the function-URL server: the whole refresh loop.
 */
import { createServer } from "node:http";
import { get as httpsGet } from "node:https";
import type { AddressInfo } from "node:net";
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  CoreV1Api,
  EventsV1Api,
  type EventsV1Event,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import pLimit from "p-limit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse } from "yaml";
import { ClusterApi, KubernetesError, METADATA_ONLY } from "../../functions/adapters/kubernetes.ts";
import { readOpenFailures } from "../../functions/core/cluster-record.ts";
import { serviceAccountToken } from "../../functions/core/kubeconfig.ts";
import { parseRfc3339 } from "../../functions/core/time.ts";
import { refresherDependenciesFromEnv, scheduledRun } from "../../functions/refresher/refresher.ts";
import { createWorker } from "../../functions/refresher/worker.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { refresherRbac } from "../../k8s/refresher-rbac.ts";
import { webhookConfiguration } from "../../k8s/webhook-configuration.ts";
import {
  putClusterRecord,
  readClusterRecordItems,
  recordTablesEnv,
} from "../../testbed/aws-env.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";
import { freePort } from "../../testbed/ports.ts";
import { decodeDockerConfig, newWebhookToken } from "../support/admission.ts";
import {
  expirationOnClock,
  type FaultProxy,
  STS_ACCESS_DENIED,
  startFaultProxy,
} from "../support/fault-server.ts";
import { captureOutput } from "../support/output.ts";
import {
  EAST,
  names,
  retireNamespace,
  startWebhookHarness,
  WEST,
  type WebhookHarness,
} from "./webhook-harness.ts";

const HOUR = 3600_000;
const motoUrl = inject("motoUrl");
const server = inject("kubeServer");
const caPem = inject("kubeCaPem");
const SA_NAMESPACE = "ecr-anywhere";
const SA_NAME = "ecr-anywhere-refresher";

let harness: WebhookHarness & { token: string };
let stsOnClock: FaultProxy | undefined;
let admin: CoreV1Api;
let adminEvents: EventsV1Api;
let refresherKubeconfig: string;
let now = Date.now();
const clock = () => now;

const junk = Buffer.from('{"auths":{}}').toString("base64");
const managed = (name: string) => ({
  metadata: { name, labels: { [names.managedLabel]: "true" } },
  type: "kubernetes.io/dockerconfigjson",
  data: { ".dockerconfigjson": junk },
});

function record(clusterId: string, extra: Record<string, unknown> = {}) {
  return {
    clusterId,
    kubeconfig: refresherKubeconfig,
    webhookTokenSha256: [newWebhookToken().sha256],
    registries: [EAST],
    ...extra,
  };
}

/** The refresher over one records name's tables (each group of clusters has its own). */
function refresher(records: string, mode: Record<string, string> = {}) {
  // The harness quiets the webhook's logs; the refresher's are asserted here.
  const quiet = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = "INFO";
  const telemetry = createTelemetry("ecr-anywhere-refresher");
  process.env.POWERTOOLS_LOG_LEVEL = quiet;
  const deps = refresherDependenciesFromEnv(
    {
      ...process.env,
      ...recordTablesEnv(records),
      ECR_ANYWHERE_CLUSTER_DEADLINE_SECONDS: "60",
      ...mode,
    },
    { now: clock, telemetry },
  );
  return { deps, run: () => scheduledRun(deps) };
}

/** The Events about one object, as `kubectl describe` would find them. */
async function eventsAbout(
  namespace: string,
  kind: string,
  name: string,
): Promise<EventsV1Event[]> {
  const list = await adminEvents.listNamespacedEvent({ namespace });
  return list.items.filter(
    (event) => event.regarding?.kind === kind && event.regarding?.name === name,
  );
}

/** The raw body of one list of managed Secrets, as the refresher's identity sees it. */
async function listBody(namespace: string, accept: string | undefined): Promise<string> {
  const token = (parse(refresherKubeconfig) as { users: { user: { token: string } }[] }).users[0]
    ?.user.token;
  const url = new URL(`${server}/api/v1/namespaces/${namespace}/secrets`);
  url.searchParams.set("labelSelector", `${names.managedLabel}=true`);
  url.searchParams.set("limit", "1000");
  return new Promise((resolve, reject) => {
    httpsGet(
      url,
      { ca: caPem, headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      },
    ).on("error", reject);
  });
}

/** The open failures the refresher remembers in a cluster's record. */
async function openFailures(clusterId: string) {
  const { refresher: item } = await readClusterRecordItems(motoUrl, clusterId, {
    records: `refresher-e2e-${clusterId}`,
  });
  return readOpenFailures(item?.refresher);
}

async function expiresAt(namespace: string, name: string): Promise<number | undefined> {
  const secret = await admin.readNamespacedSecret({ namespace, name });
  return parseRfc3339(secret.metadata?.annotations?.[names.expiresAtAnnotation]);
}

beforeAll(async () => {
  harness = await startWebhookHarness(motoUrl, inject("adminKubeconfig"), "refresher-webhook");
  process.env.AWS_ENDPOINT_URL_SQS = motoUrl;
  harness.ecr.now = clock;
  // The webhook runs on this file's clock, hours ahead: its STS sessions must end on it too.
  stsOnClock = await startFaultProxy(
    motoUrl,
    /^never$/,
    STS_ACCESS_DENIED,
    expirationOnClock(clock),
  );
  process.env.AWS_ENDPOINT_URL_STS = stsOnClock.url;
  harness.reset(clock);
  admin = harness.core;
  const adminConfig = new KubeConfig();
  adminConfig.loadFromString(inject("adminKubeconfig"));
  adminEvents = adminConfig.makeApiClient(EventsV1Api);
  for (const [name, enabled] of [
    ["team-a", true],
    ["team-b", true],
    ["late", false],
    ["secret-elsewhere", false],
    ["bulk", true],
    [SA_NAMESPACE, false],
  ] as const) {
    await admin.createNamespace({
      body: { metadata: { name, labels: enabled ? { [names.namespaceLabel]: "enabled" } : {} } },
    });
  }
  await harness.register({
    name: "ecr-anywhere-refresher-e2e",
    clusterId: "refresher-webhook",
    token: harness.token,
    probeNamespace: "team-a",
  });
  for (const object of refresherRbac({
    namespaces: ["team-a", "team-b", "late", "bulk"],
    serviceAccountNamespaces: ["team-a"],
  })) {
    await harness.objects.create(object as never);
  }
  await admin.createNamespacedServiceAccount({
    namespace: "team-a",
    body: { metadata: { name: "builder" }, imagePullSecrets: [{ name: "other" }] },
  });
  const request = await admin.createNamespacedServiceAccountToken({
    namespace: SA_NAMESPACE,
    name: SA_NAME,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  refresherKubeconfig = kubeconfig(server, caPem, {
    name: SA_NAME,
    token: request.status?.token ?? "",
  });
  await putClusterRecord(
    motoUrl,
    record("main", {
      ensure: { secretName: "ecr-pull", namespaces: ["team-a"], serviceAccounts: ["builder"] },
    }),
    { records: "refresher-e2e-main" },
  );
}, 120_000);

afterAll(async () => {
  for (const name of ["team-a", "team-b", "late", "secret-elsewhere", "bulk", SA_NAMESPACE]) {
    if (admin) await retireNamespace(admin, name);
  }
  await harness?.stop();
  await stsOnClock?.stop();
});

describe("the refresher's RBAC", () => {
  it("is enough for its work", async () => {
    const api = new ClusterApi(refresherKubeconfig, AbortSignal.timeout(10_000));
    expect(await api.enabledNamespaces(names.namespaceLabel)).toEqual(
      expect.arrayContaining(["team-a", "team-b", "bulk"]),
    );
    expect(await api.managedSecrets("team-a", names.managedLabel)).toEqual(expect.any(Array));
  });

  it("forbids what it does not need: Secrets elsewhere, deleting, others' tokens", async () => {
    const api = new ClusterApi(refresherKubeconfig, AbortSignal.timeout(10_000));
    await expect(api.managedSecrets("secret-elsewhere", names.managedLabel)).rejects.toMatchObject({
      status: 403,
    });
    await expect(api.managedSecrets("kube-system", names.managedLabel)).rejects.toBeInstanceOf(
      KubernetesError,
    );
    await expect(api.requestToken("team-a", "builder", 3600)).rejects.toMatchObject({
      status: 403,
    });
    const asRefresher = new KubeConfig();
    asRefresher.loadFromString(refresherKubeconfig);
    const core = asRefresher.makeApiClient(CoreV1Api);
    await admin.createNamespacedSecret({
      namespace: "team-b",
      body: { metadata: { name: "keep-me" }, stringData: { a: "b" } },
    });
    await expect(
      core.deleteNamespacedSecret({ namespace: "team-b", name: "keep-me" }),
    ).rejects.toMatchObject({ code: 403 });
    await expect(
      core.readNamespacedSecret({ namespace: "team-b", name: "keep-me" }),
    ).rejects.toMatchObject({ code: 403 });
  });

  it("may create and patch Events in enabled namespaces and default, and nothing more with Events", async () => {
    const asRefresher = new KubeConfig();
    asRefresher.loadFromString(refresherKubeconfig);
    const events = asRefresher.makeApiClient(EventsV1Api);
    const core = asRefresher.makeApiClient(CoreV1Api);
    const event = (namespace: string, name: string) => ({
      namespace,
      body: {
        metadata: { name, namespace },
        eventTime: new Date().toISOString().replace("Z", "000Z"),
        reportingController: "ecr-anywhere.centml.ai/refresher",
        reportingInstance: "rbac-test",
        action: "Refresh",
        reason: "RefreshFailed",
        type: "Warning",
        note: "rbac probe",
        regarding: { apiVersion: "v1", kind: "Secret", name: "probe", namespace },
      } as unknown as EventsV1Event,
    });
    await events.createNamespacedEvent(event("team-a", "rbac-probe"));
    await events.createNamespacedEvent(event("default", "rbac-probe"));
    await events.patchNamespacedEvent(
      { namespace: "team-a", name: "rbac-probe", body: { metadata: { labels: { a: "b" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await expect(
      events.createNamespacedEvent(event("secret-elsewhere", "rbac-probe")),
    ).rejects.toMatchObject({ code: 403 });
    await expect(
      events.readNamespacedEvent({ namespace: "team-a", name: "rbac-probe" }),
    ).rejects.toMatchObject({ code: 403 });
    await expect(events.listNamespacedEvent({ namespace: "team-a" })).rejects.toMatchObject({
      code: 403,
    });
    await expect(
      events.deleteNamespacedEvent({ namespace: "team-a", name: "rbac-probe" }),
    ).rejects.toMatchObject({ code: 403 });
    // The core/v1 Events API is another resource: not granted.
    await expect(
      core.createNamespacedEvent({
        namespace: "team-a",
        body: { metadata: { name: "core-probe" }, involvedObject: { kind: "Namespace" } },
      }),
    ).rejects.toMatchObject({ code: 403 });
    for (const namespace of ["team-a", "default"])
      await adminEvents.deleteNamespacedEvent({ namespace, name: "rbac-probe" });
  });
});

describe("a refresh run", () => {
  it("refreshes stale Secrets and ones without expires_at, leaves fresh ones untouched, ensures Secrets and ServiceAccounts", async () => {
    await admin.createNamespacedSecret({ namespace: "team-a", body: managed("stale-one") });
    const staleBefore = await expiresAt("team-a", "stale-one");
    const stalePassword = harness.ecr.lastPassword.get("us-east-1");
    // Not yet enabled: stored without the webhook, so it has no expires_at.
    await admin.createNamespacedSecret({ namespace: "late", body: managed("no-expiry") });
    expect(await expiresAt("late", "no-expiry")).toBeUndefined();
    await admin.patchNamespace(
      { name: "late", body: { metadata: { labels: { [names.namespaceLabel]: "enabled" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );

    now += 7 * HOUR;
    await admin.createNamespacedSecret({ namespace: "team-b", body: managed("fresh-one") });
    const fresh = await admin.readNamespacedSecret({ namespace: "team-b", name: "fresh-one" });

    const summary = await refresher("refresher-e2e-main").run();
    const [report] = summary.reports;
    expect(report).toMatchObject({
      clusterId: "main",
      ok: true,
      secretsStale: 2,
      secretsRefreshed: 2,
      refreshFailures: 0,
      secretsCreated: 1,
      serviceAccountsLinked: 1,
      credentialsRenewed: true,
    });
    expect(report?.secretsManaged).toBe(4); // stale-one, ecr-pull (created), fresh-one, no-expiry

    expect(await expiresAt("team-a", "stale-one")).toBeGreaterThan(
      staleBefore ?? Number.POSITIVE_INFINITY,
    );
    const refreshed = await admin.readNamespacedSecret({ namespace: "team-a", name: "stale-one" });
    expect(
      decodeDockerConfig(refreshed.data?.[".dockerconfigjson"]).auths[EAST]?.password,
    ).not.toBe(stalePassword);
    expect(refreshed.metadata?.annotations?.[names.markedForUpdateAtAnnotation]).toBeDefined();
    expect(await expiresAt("late", "no-expiry")).toBe(now + 12 * HOUR - (now % 1000));
    const untouched = await admin.readNamespacedSecret({ namespace: "team-b", name: "fresh-one" });
    expect(untouched.metadata?.resourceVersion).toBe(fresh.metadata?.resourceVersion);

    const ensured = await admin.readNamespacedSecret({ namespace: "team-a", name: "ecr-pull" });
    // The webhook's record allows both registries, so the ensured Secret gets both.
    const ensuredHosts = Object.keys(decodeDockerConfig(ensured.data?.[".dockerconfigjson"]).auths);
    expect(ensuredHosts.sort()).toEqual([EAST, WEST].sort());
    const builder = await admin.readNamespacedServiceAccount({
      namespace: "team-a",
      name: "builder",
    });
    expect(builder.imagePullSecrets).toEqual([{ name: "other" }, { name: "ecr-pull" }]);
    expect(report?.minRemainingSeconds).toBeGreaterThan(11 * 3600);
  });

  it("renewed its own token through TokenRequest and wrote a working kubeconfig back", async () => {
    const { refresher: stored } = await readClusterRecordItems(motoUrl, "main", {
      records: "refresher-e2e-main",
    });
    const renewed = String(stored?.kubeconfig);
    expect(renewed).not.toBe(refresherKubeconfig);
    const before = serviceAccountToken(refresherKubeconfig);
    const after = serviceAccountToken(renewed);
    expect(after).toMatchObject({ namespace: SA_NAMESPACE, name: SA_NAME });
    expect(after?.issuedAtMs).toBeGreaterThanOrEqual(
      before?.issuedAtMs ?? Number.POSITIVE_INFINITY,
    );
    const api = new ClusterApi(renewed, AbortSignal.timeout(10_000));
    expect(await api.enabledNamespaces(names.namespaceLabel)).toContain("team-a");
  });

  it("fails the run with the webhook's message and counts RefreshFailures when the webhook denies", async () => {
    harness.ecr.behaviour = "deny";
    harness.reset(clock);
    now += 7 * HOUR;
    const output = captureOutput();
    try {
      await expect(refresher("refresher-e2e-main").run()).rejects.toThrow(
        /refresh failed for 1 cluster\(s\): main/,
      );
    } finally {
      output.restore();
      harness.ecr.behaviour = "ok";
      harness.reset(clock);
    }
    const failure = output.json().find((line) => line.message === "cluster refresh failed");
    expect(JSON.stringify(failure?.problems)).toContain(
      'admission webhook \\"secrets.ecr-anywhere.centml.ai\\" denied the request: ecr-anywhere: AWS denied ecr:GetAuthorizationToken',
    );
    expect(failure).toMatchObject({ clusterId: "main", ok: false });
    expect(Number(failure?.refreshFailures)).toBeGreaterThan(0);
    const metrics = output.json().find((line) => line.RefreshFailures !== undefined);
    expect(metrics?.RefreshFailures).toBeGreaterThan(0);
    expect(metrics?.ClusterErrors).toBe(1);
  });

  it("records one Event per failing Secret however many runs fail, then a Refreshed Event once it recovers", async () => {
    const secret = await admin.readNamespacedSecret({ namespace: "team-a", name: "stale-one" });
    const before = await eventsAbout("team-a", "Secret", "stale-one");
    expect(before.filter((event) => event.reason === "Refreshed")).toHaveLength(0);
    harness.ecr.behaviour = "deny";
    harness.reset(clock);
    try {
      for (let run = 0; run < 2; run++) {
        now += 7 * HOUR;
        await expect(refresher("refresher-e2e-main").run()).rejects.toThrow(/main/);
      }
    } finally {
      harness.ecr.behaviour = "ok";
      harness.reset(clock);
    }
    const failures = (await eventsAbout("team-a", "Secret", "stale-one")).filter(
      (event) => event.reason === "RefreshFailed",
    );
    // The earlier denied run, and two more: still one object, its series counting them.
    expect(failures).toHaveLength(1);
    const [failure] = failures;
    expect(failure).toMatchObject({
      type: "Warning",
      reportingController: "ecr-anywhere.centml.ai/refresher",
      regarding: {
        kind: "Secret",
        name: "stale-one",
        namespace: "team-a",
        uid: secret.metadata?.uid,
      },
      series: { count: 3 },
    });
    expect(failure?.note).toContain(
      'admission webhook "secrets.ecr-anywhere.centml.ai" denied the request: ecr-anywhere: AWS denied ecr:GetAuthorizationToken',
    );
    expect(failure?.metadata?.annotations?.["ecr-anywhere.centml.ai/refresh-failing"]).toBe("true");
    // The open failure is remembered in the refresher's part of the record, so only this Secret's
    // next successful refresh makes the recovery check.
    expect((await openFailures("main")).uids).toContain(secret.metadata?.uid);

    now += 7 * HOUR;
    await refresher("refresher-e2e-main").run();
    expect((await openFailures("main")).uids).not.toContain(secret.metadata?.uid);
    const recovered = await eventsAbout("team-a", "Secret", "stale-one");
    const refreshed = recovered.filter((event) => event.reason === "Refreshed");
    expect(refreshed).toHaveLength(1);
    expect(refreshed[0]).toMatchObject({
      type: "Normal",
      regarding: { uid: secret.metadata?.uid },
    });
    expect(
      recovered.find((event) => event.reason === "RefreshFailed")?.metadata?.annotations?.[
        "ecr-anywhere.centml.ai/refresh-failing"
      ],
    ).toBe("false");

    // Healthy runs after that add nothing.
    now += 7 * HOUR;
    await refresher("refresher-e2e-main").run();
    const later = await eventsAbout("team-a", "Secret", "stale-one");
    expect(later).toHaveLength(recovered.length);
    expect(later.find((event) => event.reason === "Refreshed")?.series).toBeUndefined();
  });

  it("redacts the webhook token kube-apiserver puts in a failed call's message, in its logs and Events", async () => {
    // A second webhook (its own labels) with a token in its URL, unreachable: every write of a
    // Secret carrying both managed labels fails, and the API server's message carries that URL.
    const leakPrefix = "leak.refresher.test";
    const leaked = newWebhookToken().token;
    const closed = await freePort();
    await admin.createNamespace({
      body: {
        metadata: {
          name: "leaky",
          labels: { [names.namespaceLabel]: "enabled", [`${leakPrefix}/namespace`]: "enabled" },
        },
      },
    });
    for (const object of refresherRbac({ namespaces: ["leaky"] }))
      if ((object.metadata as { namespace?: string } | undefined)?.namespace === "leaky")
        await harness.objects.create(object as never);
    await admin.createNamespacedSecret({
      namespace: "leaky",
      body: {
        ...managed("leaky-pull"),
        metadata: {
          name: "leaky-pull",
          labels: { [names.managedLabel]: "true", [`${leakPrefix}/managed`]: "true" },
        },
      },
    });
    await harness.admission.createMutatingWebhookConfiguration({
      body: webhookConfiguration({
        name: "leak-refresher",
        labelPrefix: leakPrefix,
        webhookUrl: `https://127.0.0.1:${closed}/v1/clusters/leaky/${leaked}`,
        caPem: harness.caPem,
      }),
    });
    await putClusterRecord(motoUrl, record("leaky"), { records: "refresher-e2e-leaky" });
    const output = captureOutput();
    try {
      // The configuration reaches the admission chain asynchronously: run until a mark fails.
      for (let run = 0; run < 40 && !output.text().includes("failed calling webhook"); run++) {
        now += 7 * HOUR;
        await refresher("refresher-e2e-leaky")
          .run()
          .catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      output.restore();
      await harness.admission
        .deleteMutatingWebhookConfiguration({ name: "leak-refresher" })
        .catch(() => undefined);
    }
    const text = output.text();
    expect(text).toContain("/v1/clusters/leaky/<redacted>");
    expect(text).not.toContain(leaked);
    const [event] = (await eventsAbout("leaky", "Secret", "leaky-pull")).filter(
      (item) => item.reason === "RefreshFailed",
    );
    expect(event?.note).toContain("/v1/clusters/leaky/<redacted>");
    expect(JSON.stringify(event)).not.toContain(leaked);
    await retireNamespace(admin, "leaky");
  });

  it("keeps going when another cluster is unreachable, then fails naming it", async () => {
    const closed = await freePort();
    await putClusterRecord(motoUrl, record("healthy"), { records: "refresher-e2e-two" });
    await putClusterRecord(
      motoUrl,
      record("down", {
        kubeconfig: kubeconfig(`https://127.0.0.1:${closed}`, caPem, { name: "x", token: "t" }),
      }),
      { records: "refresher-e2e-two" },
    );
    now += 7 * HOUR;
    const before = await expiresAt("team-a", "stale-one");
    await expect(refresher("refresher-e2e-two").run()).rejects.toThrow(
      /refresh failed for 1 cluster\(s\): down;/,
    );
    expect(await expiresAt("team-a", "stale-one")).toBeGreaterThan(
      before ?? Number.POSITIVE_INFINITY,
    );
  });

  it("never sends its token to a plain-HTTP or loopback server, unless the test bed allows loopback", async () => {
    const seen: string[] = [];
    const listener = createServer((request, response) => {
      seen.push(String(request.headers.authorization));
      response.writeHead(500).end();
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const { port } = listener.address() as AddressInfo;
    try {
      await putClusterRecord(
        motoUrl,
        record("cleartext", {
          kubeconfig: kubeconfig(`http://127.0.0.1:${port}`, caPem, { name: "x", token: "t" }),
        }),
        { records: "refresher-e2e-cleartext" },
      );
      const output = captureOutput();
      try {
        await expect(refresher("refresher-e2e-cleartext").run()).rejects.toThrow(/cleartext/);
        // Without the test-bed setting, the same record pointed at loopback over https is refused too.
        await putClusterRecord(
          motoUrl,
          record("cleartext", {
            kubeconfig: kubeconfig(`https://127.0.0.1:${port}`, caPem, { name: "x", token: "t" }),
          }),
          { records: "refresher-e2e-cleartext" },
        );
        await expect(
          refresher("refresher-e2e-cleartext", {
            ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "false",
          }).run(),
        ).rejects.toThrow(/cleartext/);
      } finally {
        output.restore();
      }
      expect(output.text()).toContain("is not https: the refresher sends its token only over TLS");
      expect(output.text()).toContain("loopback, link-local or metadata address");
      expect(seen).toEqual([]);
    } finally {
      listener.close();
    }
  });

  it("reports an ensure namespace that lacks the label instead of skipping it", async () => {
    await putClusterRecord(
      motoUrl,
      record("ensure-missing", {
        ensure: { secretName: "ecr-pull", namespaces: ["secret-elsewhere"] },
      }),
      { records: "refresher-e2e-ensure" },
    );
    const output = captureOutput();
    try {
      await expect(refresher("refresher-e2e-ensure").run()).rejects.toThrow(/ensure-missing/);
    } finally {
      output.restore();
    }
    expect(output.text()).toContain(
      "ensure: namespace secret-elsewhere lacks the label ecr-anywhere.centml.ai/namespace=enabled",
    );
    const namespace = await admin.readNamespace({ name: "secret-elsewhere" });
    const [event, ...more] = await eventsAbout("default", "Namespace", "secret-elsewhere");
    expect(more).toHaveLength(0);
    expect(event).toMatchObject({
      reason: "EnsureFailed",
      type: "Warning",
      regarding: { apiVersion: "v1", kind: "Namespace", uid: namespace.metadata?.uid },
    });
    expect(event?.note).toContain("lacks the label ecr-anywhere.centml.ai/namespace=enabled");

    // A second run counts it again on the same Event.
    await expect(refresher("refresher-e2e-ensure").run()).rejects.toThrow(/ensure-missing/);
    const again = await eventsAbout("default", "Namespace", "secret-elsewhere");
    expect(again).toHaveLength(1);
    expect(again[0]?.series?.count).toBe(2);
  });

  it("pages through 1,000 managed Secrets in one namespace and refreshes every stale one", async () => {
    const limit = pLimit(16);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        limit(() =>
          admin.createNamespacedSecret({ namespace: "bulk", body: managed(`bulk-${i}`) }),
        ),
      ),
    );
    const api = new ClusterApi(refresherKubeconfig, AbortSignal.timeout(30_000));
    const listed = await api.managedSecrets("bulk", names.managedLabel, 100);
    expect(listed).toHaveLength(1000);
    // Ten pages of 100, joined by continue tokens (an eleventh, empty, if the server cannot tell the end).
    expect(api.calls).toBeGreaterThanOrEqual(10);
    expect(api.calls).toBeLessThanOrEqual(11);

    // What one list of those 1,000 costs on the wire, full objects against metadata only.
    const full = await listBody("bulk", undefined);
    const metadataOnly = await listBody("bulk", METADATA_ONLY);
    // Field names survive in managedFields; the data (the ECR passwords) does not.
    expect(full).toContain('"data":{".dockerconfigjson":');
    expect(metadataOnly).not.toContain('"data":');
    expect(metadataOnly).toContain(names.expiresAtAnnotation);
    expect(metadataOnly.length).toBeLessThan(full.length);
    console.info(
      `list of 1,000 managed Secrets: ${full.length} bytes full, ${metadataOnly.length} bytes metadata only`,
    );

    await putClusterRecord(motoUrl, record("bulk-cluster"), { records: "refresher-e2e-bulk" });
    now += 7 * HOUR;
    const summary = await refresher("refresher-e2e-bulk").run();
    const [report] = summary.reports;
    expect(report?.secretsManaged).toBeGreaterThanOrEqual(1000);
    expect(report?.secretsStale).toBe(report?.secretsManaged);
    expect(report?.secretsRefreshed).toBe(report?.secretsStale);
  }, 180_000);
});

describe("fan-out", () => {
  it("queues one SQS message per cluster", async () => {
    const sqs = new SQSClient({ endpoint: motoUrl });
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: "refresher-e2e-fanout" }),
    );
    const { run } = refresher("refresher-e2e-two", {
      ECR_ANYWHERE_REFRESH_MODE: "fanout",
      ECR_ANYWHERE_FANOUT_QUEUE_URL: QueueUrl ?? "",
    });
    expect(await run()).toMatchObject({ mode: "fanout", clusters: 2 });
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }),
    );
    expect(
      (received.Messages ?? []).map((message) => JSON.parse(message.Body ?? "").clusterId).sort(),
    ).toEqual(["down", "healthy"]);
  });

  it("the worker refreshes the cluster named by each SQS message and reports failures per message", async () => {
    const { deps } = refresher("refresher-e2e-two");
    const worker = createWorker(deps);
    now += 7 * HOUR;
    const record = (messageId: string, body: string) => ({
      messageId,
      receiptHandle: `r-${messageId}`,
      body,
      attributes: {
        ApproximateReceiveCount: "1",
        SentTimestamp: String(Date.now()),
        SenderId: "test",
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: "",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:refresher-e2e-fanout",
      awsRegion: "us-east-1",
    });
    const before = await expiresAt("team-a", "stale-one");
    const output = captureOutput();
    const result = await worker({
      Records: [
        record("healthy-1", '{"clusterId":"healthy"}'),
        record("down-1", '{"clusterId":"down"}'),
        record("nobody-1", '{"clusterId":"nobody"}'),
        record("junk-1", "not json"),
      ],
    }).finally(() => output.restore());
    expect(output.text()).toContain("malformed fan-out message dropped");
    expect(result.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual([
      "down-1",
      "nobody-1",
    ]);
    expect(await expiresAt("team-a", "stale-one")).toBeGreaterThan(
      before ?? Number.POSITIVE_INFINITY,
    );
  });
});
