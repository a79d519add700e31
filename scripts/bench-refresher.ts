/**
 * The refresher against the real kube-apiserver of the test bed: time and API calls to check
 * 1,000 and 5,000 managed Secrets of which 10% are stale, and proof that only stale ones are
 * written. Part of `npm run bench` (BENCH_REFRESHER_SIZES=1000,5000 changes the sizes).
 */

import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import pLimit from "p-limit";
import { ClusterApi } from "../functions/adapters/kubernetes.ts";
import { refresherConfigFromEnv } from "../functions/core/config.ts";
import { MARK_SLOT_MS, MarkBudget } from "../functions/lib/mark-budget.ts";
import { refreshCluster } from "../functions/refresher/refresh-cluster.ts";
import { refresherRbac } from "../k8s/refresher-rbac.ts";
import { names, startWebhookHarness } from "../test/e2e/webhook-harness.ts";
import { kubeconfig, startControlPlane } from "../testbed/control-plane.ts";
import { startMoto } from "../testbed/moto.ts";

const SIZES = (process.env.BENCH_REFRESHER_SIZES ?? "1000,5000").split(",").map(Number);
const HOUR = 3600_000;

export async function benchRefresher(): Promise<string[]> {
  const lines: string[] = [];
  // The in-process webhook writes a log line and EMF metrics per admission: keep them off the report.
  const stdoutWrite = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  const [moto, controlPlane] = await Promise.all([startMoto(), startControlPlane()]);
  const harness = await startWebhookHarness(moto.url, controlPlane.adminKubeconfig, "bench");
  let now = Date.now();
  const clock = () => now;
  harness.ecr.now = clock;
  harness.reset(clock);
  try {
    const { core, objects } = harness;
    for (const size of SIZES)
      await core.createNamespace({ body: { metadata: { name: `bench-${size}` } } });
    await core.createNamespace({ body: { metadata: { name: "ecr-anywhere" } } });
    await core.createNamespace({
      body: { metadata: { name: "probe", labels: { [names.namespaceLabel]: "enabled" } } },
    });
    await harness.register({
      name: "ecr-anywhere-bench",
      clusterId: "bench",
      token: harness.token,
      probeNamespace: "probe",
    });
    for (const object of refresherRbac({ namespaces: SIZES.map((size) => `bench-${size}`) }))
      await objects.create(object as never);
    const token = await core.createNamespacedServiceAccountToken({
      namespace: "ecr-anywhere",
      name: "ecr-anywhere-refresher",
      body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
    });
    const refresherKubeconfig = kubeconfig(controlPlane.server, controlPlane.ca.cert, {
      name: "refresher",
      token: token.status?.token ?? "",
    });
    // The test bed's API server listens on loopback.
    const config = refresherConfigFromEnv({ ECR_ANYWHERE_ALLOW_LOCAL_API_SERVERS: "true" });
    // The refresher's part of the record only: the benchmark leaves the record store out.
    const stored = {
      record: { clusterId: "bench", kubeconfig: refresherKubeconfig },
      revision: 0,
      keyArn: "",
    };

    let previous: string | undefined;
    for (const size of SIZES) {
      const namespace = `bench-${size}`;
      if (previous) await setEnabled(core, previous, false);
      await setEnabled(core, namespace, true);
      previous = namespace;
      const stale = Math.round(size / 10);
      const limit = pLimit(32);
      const create = (from: number, to: number) =>
        Promise.all(
          Array.from({ length: to - from }, (_, i) =>
            limit(() =>
              core.createNamespacedSecret({
                namespace,
                body: {
                  metadata: { name: `s-${from + i}`, labels: { [names.managedLabel]: "true" } },
                  type: "kubernetes.io/dockerconfigjson",
                  data: { ".dockerconfigjson": "e30=" },
                },
              }),
            ),
          ),
        );
      // 10% written 7 hours "ago": past refreshBefore (6 h) of their 12 h credentials.
      await create(0, stale);
      now += 7 * HOUR;
      harness.reset(clock);
      await create(stale, size);

      const started = performance.now();
      let api: ClusterApi | undefined;
      const report = await refreshCluster(
        stored,
        {
          config,
          now: clock,
          clusterApi: (text, signal) => {
            api = new ClusterApi(text, signal);
            return api;
          },
          saveRecord: async (unchanged) => unchanged,
          markBudget: new MarkBudget({ total: config.markConcurrency, slotMs: MARK_SLOT_MS }),
        },
        AbortSignal.timeout(600_000),
      );
      const seconds = (performance.now() - started) / 1000;
      const byMethod = api?.callsByMethod ?? {};
      lines.push(
        `${size} managed Secrets, ${report.secretsStale} stale: ${seconds.toFixed(2)} s, ${report.apiCalls} API calls (GET ${byMethod.GET ?? 0}, PATCH ${byMethod.PATCH ?? 0}, POST ${byMethod.POST ?? 0}); refreshed ${report.secretsRefreshed}, failures ${report.refreshFailures}`,
      );
      // Writes only for stale Secrets: one mark each. No failure is open (the record remembers
      // none), so no refresh costs a recovery check of a RefreshFailed Event.
      if (report.secretsStale !== stale || (byMethod.PATCH ?? 0) !== stale) {
        throw new Error(
          `expected exactly ${stale} PATCHes (one mark per stale Secret), got ${byMethod.PATCH ?? 0} for ${report.secretsStale} stale`,
        );
      }
    }
  } finally {
    process.stdout.write = stdoutWrite;
    await harness.stop();
    await Promise.all([moto.stop(), controlPlane.stop()]);
  }
  return lines;
}

async function setEnabled(
  core: Awaited<ReturnType<typeof startWebhookHarness>>["core"],
  namespace: string,
  enabled: boolean,
) {
  await core.patchNamespace(
    {
      name: namespace,
      body: { metadata: { labels: { [names.namespaceLabel]: enabled ? "enabled" : null } } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

if (import.meta.main) {
  for (const line of await benchRefresher()) console.log(line);
}
