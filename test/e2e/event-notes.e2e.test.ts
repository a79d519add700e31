/**
 * Event notes against the real API server, which refuses a note over 1,024 bytes (not
 * characters): a long message in a multi-byte language must be cut so the Event is still written.
 */
import { CoreV1Api, EventsV1Api, KubeConfig } from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ClusterApi } from "../../functions/adapters/kubernetes.ts";
import { newEvent } from "../../functions/core/events.ts";

const adminKubeconfig = inject("adminKubeconfig");
const NAMESPACE = "event-notes";
let secretUid = "";

beforeAll(async () => {
  const config = new KubeConfig();
  config.loadFromString(adminKubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch(() => undefined);
  const secret = await core.createNamespacedSecret({
    namespace: NAMESPACE,
    body: { metadata: { name: `s-${Date.now()}` }, type: "Opaque" },
  });
  secretUid = secret.metadata?.uid ?? "";
});

describe("a RefreshFailed Event with a long multi-byte message", () => {
  it("is accepted by kube-apiserver, its note cut to 1,024 bytes", async () => {
    const body = newEvent(
      {
        subject: { kind: "Secret", namespace: NAMESPACE, name: "s", uid: secretUid },
        reason: "RefreshFailed",
        // What an API server in another language says, many times over.
        note: "webhook «secrets» a refusé l'écriture : délai dépassé — ".repeat(60),
      },
      { labelPrefix: "ecr-anywhere.centml.ai", reportingInstance: "notes", nowMs: Date.now() },
    );
    const api = new ClusterApi(adminKubeconfig, AbortSignal.timeout(10_000));
    expect(await api.createEvent(body)).toBe("created");
    const config = new KubeConfig();
    config.loadFromString(adminKubeconfig);
    const stored = await config
      .makeApiClient(EventsV1Api)
      .readNamespacedEvent({ namespace: NAMESPACE, name: body.metadata.name });
    expect(Buffer.byteLength(stored.note ?? "", "utf8")).toBeLessThanOrEqual(1024);
    expect(stored.note?.endsWith("…")).toBe(true);
  });
});
