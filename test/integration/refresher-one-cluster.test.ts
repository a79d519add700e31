/**
 * The refresher's one-cluster invocation (`{"clusterId": ...}`, onboard's check) through the real
 * AWS SDK against moto (the record table, KMS) and the cluster stand-in over HTTPS: it refreshes
 * that cluster alone, in either mode, within the check's own share of the mark budget, and answers
 * with the cluster's report, a failure included, where the scheduled run throws.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { contractNames } from "../../functions/core/contract.ts";
import { toRfc3339 } from "../../functions/core/time.ts";
import { MARK_SLOT_MS, MarkBudget } from "../../functions/lib/mark-budget.ts";
import { loopbackServerTls } from "../../functions/local/tls.ts";
import {
  createRefresher,
  type OneClusterResult,
  type RefresherDependencies,
  refresherDependenciesFromEnv,
} from "../../functions/refresher/refresher.ts";
import { createTelemetry } from "../../functions/telemetry.ts";
import { localAwsEnv, putClusterRecord, recordTablesEnv } from "../../testbed/aws-env.ts";
import { type ClusterStandIn, startClusterStandIn } from "../../testbed/cluster-stand-in.ts";
import { kubeconfig } from "../../testbed/control-plane.ts";
import { SCHEDULED_EVENT } from "../../testbed/lambda-stand-in.ts";
import { freePort } from "../../testbed/ports.ts";
import { newWebhookToken } from "../support/admission.ts";
import { type CapturedOutput, captureOutput } from "../support/output.ts";

const motoUrl = inject("motoUrl");
const RECORDS = "one-cluster-test";
const names = contractNames();
let fleet: ClusterStandIn;
let webhook: Server;
let caPem: string;
let output: CapturedOutput;

function recordFor(clusterId: string, server: string) {
  return {
    clusterId,
    kubeconfig: kubeconfig(server, caPem, { name: "refresher", token: `api-${clusterId}` }),
    webhookTokenSha256: [newWebhookToken().sha256],
    registries: ["123456789012.dkr.ecr.us-east-1.amazonaws.com"],
  };
}

/** A managed Secret in `apps`, fresh (12 h left) or stale (no expiry recorded at all). */
function addCluster(clusterId: string, fresh: boolean) {
  const cluster = fleet.addCluster({
    id: clusterId,
    token: `api-${clusterId}`,
    webhookUrl: `https://127.0.0.1:${(webhook.address() as AddressInfo).port}/v1/clusters/${clusterId}/${"t".repeat(43)}`,
    webhookName: "secrets.ecr-anywhere.centml.ai",
  });
  cluster.namespaces.set("apps", { [names.namespaceLabel]: "enabled" });
  const now = Date.now();
  cluster.secrets.set("apps/pull", {
    metadata: {
      name: "pull",
      namespace: "apps",
      uid: `uid-${clusterId}`,
      resourceVersion: "1",
      labels: { [names.managedLabel]: "true" },
      annotations: fresh
        ? {
            [names.updatedAtAnnotation]: toRfc3339(now),
            [names.expiresAtAnnotation]: toRfc3339(now + 12 * 3600_000),
          }
        : {},
    },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": "e30=" },
  });
}

function dependencies(
  env: Record<string, string> = {},
  overrides: Partial<RefresherDependencies> = {},
): RefresherDependencies {
  return refresherDependenciesFromEnv(
    { ...process.env, ...recordTablesEnv(RECORDS), ...env },
    { telemetry: createTelemetry("ecr-anywhere-refresher"), ...overrides },
  );
}

/** A budget nobody may use: the one-cluster check must never take from the scheduled run's. */
function untouchableBudget(): MarkBudget {
  const budget = new MarkBudget({ total: 10, slotMs: MARK_SLOT_MS });
  budget.join = () => {
    throw new Error("the one-cluster check took a slot of the scheduled run's budget");
  };
  return budget;
}

const one = (deps: RefresherDependencies, clusterId: string) =>
  createRefresher(deps)({ clusterId }) as Promise<OneClusterResult>;

beforeAll(async () => {
  Object.assign(process.env, localAwsEnv({ records: motoUrl, sts: motoUrl, ecr: motoUrl }));
  const webhookTls = await loopbackServerTls("one-cluster-webhook");
  // Allows every write and patches nothing: a mark through it never moves expires_at forward.
  webhook = createServer(webhookTls.server, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const { request: review } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        request: { uid: string };
      };
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: { uid: review.uid, allowed: true },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  const clusterTls = await loopbackServerTls("one-cluster-clusters");
  caPem = clusterTls.ca.cert;
  fleet = await startClusterStandIn({
    tls: clusterTls.server,
    webhookCaPem: webhookTls.ca.cert,
    labelPrefix: names.labelPrefix,
  });
  addCluster("fresh", true);
  addCluster("stale", false);
  const where = { records: RECORDS };
  for (const id of ["fresh", "stale"])
    await putClusterRecord(motoUrl, recordFor(id, `${fleet.url}/clusters/${id}`), where);
  await putClusterRecord(
    motoUrl,
    recordFor("down", `https://127.0.0.1:${await freePort()}`),
    where,
  );
});

afterAll(async () => {
  await fleet?.stop();
  webhook?.close();
});

describe("the refresher's one-cluster invocation", () => {
  it("refreshes that cluster alone and answers with its report, where the scheduled run fails for another", async () => {
    const deps = dependencies({}, { markBudget: untouchableBudget() });
    output = captureOutput();
    try {
      const result = await one(deps, "fresh");
      expect(result).toMatchObject({
        mode: "one-cluster",
        report: { clusterId: "fresh", ok: true, problems: [], secretsManaged: 1, secretsStale: 0 },
      });
      expect(fleet.admissions).toEqual([]);
      expect(output.text()).not.toContain('"clusterId":"stale"');
      // The whole fleet, on the schedule's event: the unreachable cluster fails the invocation.
      await expect(
        createRefresher(dependencies({ ECR_ANYWHERE_CHECK_MARK_CONCURRENCY: "0" }))(
          SCHEDULED_EVENT,
        ),
      ).rejects.toThrow(/^refresh failed for \d+ cluster\(s\): .*down/);
    } finally {
      output.restore();
    }
  });

  it("returns a cluster the refresher cannot reach as data: ok false, what it saw, logged and counted", async () => {
    output = captureOutput();
    try {
      const { report } = await one(dependencies(), "down");
      expect(report.ok).toBe(false);
      expect(report.problems.join("\n")).toMatch(/ECONNREFUSED|connect/);
      expect(output.metric("ClusterErrors")).toBe(1);
      expect(output.text()).toContain("cluster refresh failed");
    } finally {
      output.restore();
    }
  });

  it("answers a cluster without a record with why, not an error", async () => {
    output = captureOutput();
    try {
      const { report } = await one(dependencies(), "never-onboarded");
      expect(report).toMatchObject({ clusterId: "never-onboarded", ok: false });
      expect(report.problems[0]).toMatch(
        /^cannot read the cluster record: .*no item never-onboarded/,
      );
      expect(output.metric("ClusterErrors")).toBe(1);
    } finally {
      output.restore();
    }
  });

  it("marks within the check's own share of the budget, never the scheduled run's", async () => {
    const check = new MarkBudget({ total: 1, slotMs: MARK_SLOT_MS });
    let joined = 0;
    const join = check.join.bind(check);
    check.join = () => {
      joined++;
      return join();
    };
    const before = fleet.admissions.length;
    output = captureOutput();
    try {
      const { report } = await one(
        dependencies({}, { markBudget: untouchableBudget(), checkMarkBudget: check }),
        "stale",
      );
      expect(joined).toBe(1);
      expect(report).toMatchObject({ secretsStale: 1, secretsRefreshed: 0, refreshFailures: 1 });
      // This webhook patches nothing: the failure is the cluster's report, not a thrown error.
      expect(report.problems).toEqual([
        expect.stringMatching(/Secret apps\/pull: expires_at did not move forward/),
      ]);
      expect(fleet.admissions.slice(before).map((a) => a.clusterId)).toEqual(["stale"]);
    } finally {
      output.restore();
    }
  });

  it("with no share of the budget, counts stale Secrets and marks none", async () => {
    const before = fleet.admissions.length;
    output = captureOutput();
    try {
      const { report } = await one(
        dependencies(
          { ECR_ANYWHERE_CHECK_MARK_CONCURRENCY: "0" },
          { markBudget: untouchableBudget() },
        ),
        "stale",
      );
      expect(report).toMatchObject({ ok: true, secretsStale: 1, secretsRefreshed: 0 });
      expect(fleet.admissions.length).toBe(before);
    } finally {
      output.restore();
    }
  });

  it("runs the cluster in the refresher itself in fan-out mode: nothing is queued", async () => {
    const deps = dependencies(
      {
        ECR_ANYWHERE_REFRESH_MODE: "fanout",
        ECR_ANYWHERE_FANOUT_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/q",
      },
      {
        enqueue: () => Promise.reject(new Error("a one-cluster check queued something")),
      },
    );
    output = captureOutput();
    try {
      const { report } = await one(deps, "fresh");
      expect(report).toMatchObject({ clusterId: "fresh", ok: true, secretsManaged: 1 });
    } finally {
      output.restore();
    }
  });

  it("refuses any other event, before reading anything", async () => {
    const deps = dependencies(
      {},
      { listRecords: () => Promise.reject(new Error("a refused event listed the records")) },
    );
    output = captureOutput();
    try {
      await expect(createRefresher(deps)({})).rejects.toThrow(
        /^refresher event refused: expected EventBridge's scheduled event/,
      );
      await expect(createRefresher(deps)({ clusterId: "../x" })).rejects.toThrow(
        /^refresher event refused: a one-cluster event: clusterId: a cluster id/,
      );
    } finally {
      output.restore();
    }
  });
});
