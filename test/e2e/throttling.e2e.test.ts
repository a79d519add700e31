/**
 * The refresher against a webhook served as Lambda serves it (isolated environments, a reserved
 * concurrency, Lambda's 429 without Retry-After): a refresh must not throttle admissions, and a
 * throttled mark must be retried rather than counted as a failure.
 */

import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ClusterApi } from "../../functions/adapters/kubernetes.ts";
import { refresherConfigFromEnv } from "../../functions/core/config.ts";
import { contractNames } from "../../functions/core/contract.ts";
import { MARK_SLOT_MS, MarkBudget } from "../../functions/lib/mark-budget.ts";
import {
  type RefreshClusterDependencies,
  refreshCluster,
} from "../../functions/refresher/refresh-cluster.ts";
import { createManagedSecrets, startWebhookHarness } from "./webhook-harness.ts";

const PREFIX = "throttle.example.com";
const NAMESPACE = "throttle-apps";
const SECRETS = 24;
/** The webhook's reserved concurrency here; the stack lets the refresher's marks take half of a reservation. */
const RESERVED = 4;
const TOKEN_SECONDS = 10;
const names = contractNames(PREFIX);
const adminKubeconfig = inject("adminKubeconfig");

let harness: Awaited<ReturnType<typeof startWebhookHarness>>;

function refreshOnce(markConcurrency: number, markAttempts: number) {
  const config = refresherConfigFromEnv({
    ECR_ANYWHERE_LABEL_PREFIX: PREFIX,
    ECR_ANYWHERE_MARK_CONCURRENCY: String(markConcurrency),
    ECR_ANYWHERE_MARK_ATTEMPTS: String(markAttempts),
    // The test bed's API server listens on loopback.
    ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "true",
  });
  const deps: RefreshClusterDependencies = {
    config,
    now: Date.now,
    clusterApi: (kubeconfig, signal) => new ClusterApi(kubeconfig, signal),
    saveRecord: async (stored) => stored,
    markBudget: new MarkBudget({ total: markConcurrency, slotMs: MARK_SLOT_MS }),
  };
  const record = { clusterId: "throttle", kubeconfig: adminKubeconfig };
  return refreshCluster({ record, revision: 0, keyArn: "" }, deps, AbortSignal.timeout(60_000));
}

/** Waits until every Secret's short-lived credentials are past half their life: all stale. */
const allStale = () =>
  new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS / 2) * 1000 + 1200));

beforeAll(async () => {
  process.env.ECR_ANYWHERE_LABEL_PREFIX = PREFIX;
  harness = await startWebhookHarness(inject("motoUrl"), adminKubeconfig, "throttle-webhook", {
    lambdaConcurrency: RESERVED,
  });
  // Short tokens are never served from an environment's cache, so every write mints and moves
  // expires_at; ECR's latency keeps each admission busy long enough for calls to overlap.
  harness.ecr.expiresInSeconds = TOKEN_SECONDS;
  harness.ecr.latencyMs = 250;
  await harness.core.createNamespace({
    body: { metadata: { name: NAMESPACE, labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await harness.register({
    name: "ecr-anywhere-throttle-e2e",
    clusterId: "throttle-webhook",
    token: harness.token,
    labelPrefix: PREFIX,
    probeNamespace: NAMESPACE,
  });
  await createManagedSecrets(harness.core, NAMESPACE, names.managedLabel, SECRETS);
});

afterAll(async () => {
  await harness?.stop();
});

describe("refreshing against a throttling webhook", () => {
  it("fails today's way: more marks in flight than the webhook's concurrency, no retry", async () => {
    await allStale();
    const throttlesBefore = harness.pool?.stats.throttles ?? 0;
    const report = await refreshOnce(10, 1);
    expect(report.secretsStale).toBe(SECRETS);
    expect((harness.pool?.stats.throttles ?? 0) - throttlesBefore).toBeGreaterThan(0);
    expect(report.refreshFailures).toBeGreaterThan(0);
    // What kube-apiserver makes of the function URL's 429: the write fails, no retry.
    expect(report.problems.join("\n")).toMatch(
      /failed to call webhook: the server has received too many requests/,
    );
  });

  it("with the stack's budget (half the reserved concurrency) nothing is throttled and everything is refreshed", async () => {
    await allStale();
    const throttlesBefore = harness.pool?.stats.throttles ?? 0;
    const report = await refreshOnce(Math.floor(RESERVED / 2), 4);
    expect(report).toMatchObject({
      secretsStale: SECRETS,
      secretsRefreshed: SECRETS,
      refreshFailures: 0,
      markRetries: 0,
    });
    expect((harness.pool?.stats.throttles ?? 0) - throttlesBefore).toBe(0);
  });

  it("over budget, throttled marks are retried with backoff instead of failing", async () => {
    await allStale();
    const throttlesBefore = harness.pool?.stats.throttles ?? 0;
    const report = await refreshOnce(10, 8);
    expect(report).toMatchObject({
      secretsStale: SECRETS,
      secretsRefreshed: SECRETS,
      refreshFailures: 0,
    });
    expect(report.markRetries).toBe((harness.pool?.stats.throttles ?? 0) - throttlesBefore);
  });
});
