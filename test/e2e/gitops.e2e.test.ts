/**
 * GitOps on the real kube-apiserver. A managed Secret kept in Git and applied by a GitOps tool:
 * whatever the tool re-applies (server-side apply as Argo CD or Flux, or kubectl's client-side
 * apply), the webhook runs on that write too, so the Secret ends filled and keeps the contract's
 * annotations. And the files `onboard --dry-run --out` renders, applied in the documented order
 * (labels and RBAC, put-record, the webhook last), never block a managed write, and a second
 * render with `--token-file` is byte-identical.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ApiException,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { RecordStore } from "../../cli/adapters/aws.ts";
import { DEFAULT_RECORDS_NAME } from "../../functions/core/contract.ts";
import { testRecordKey } from "../../testbed/aws-env.ts";
import { waitFor } from "../../testbed/ports.ts";
import { decodeDockerConfig } from "../support/admission.ts";
import { EAST, names, retireNamespace, startWebhookHarness, WEST } from "./webhook-harness.ts";

const NAMESPACE = "gitops";
const adminKubeconfig = inject("adminKubeconfig");
let harness: Awaited<ReturnType<typeof startWebhookHarness>>;
let objects: KubernetesObjectApi;

/** The Secret as it sits in Git: a placeholder the webhook replaces. */
function fromGit(name: string): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: NAMESPACE, labels: { [names.managedLabel]: "true" } },
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from("FAKE").toString("base64") },
  };
}

function expectFilled(secret: V1Secret): void {
  const auths = decodeDockerConfig(secret.data?.[".dockerconfigjson"]).auths;
  expect(Object.keys(auths).sort()).toEqual([EAST, WEST].sort());
  expect(secret.metadata?.annotations?.[names.expiresAtAnnotation]).toMatch(/Z$/);
  expect(secret.metadata?.annotations?.[names.updatedAtAnnotation]).toMatch(/Z$/);
}

const apply = (secret: V1Secret, fieldManager: string) =>
  objects.patch(secret, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);

beforeAll(async () => {
  harness = await startWebhookHarness(inject("motoUrl"), adminKubeconfig, "gitops");
  await harness.core.createNamespace({
    body: { metadata: { name: NAMESPACE, labels: { [names.namespaceLabel]: "enabled" } } },
  });
  await harness.register({
    name: "ecr-anywhere-gitops",
    clusterId: "gitops",
    token: harness.token,
    probeNamespace: NAMESPACE,
  });
  const config = new KubeConfig();
  config.loadFromString(adminKubeconfig);
  objects = KubernetesObjectApi.makeApiClient(config);
});

afterAll(async () => {
  if (harness) await retireNamespace(harness.core, NAMESPACE);
  await harness?.stop();
});

describe("a managed Secret applied from Git", () => {
  it("stays filled when the tool re-applies the Git manifest with server-side apply", async () => {
    expectFilled(await apply(fromGit("synced"), "argocd-controller"));
    // An auto-sync re-applies the placeholder: the webhook fills the Secret again on that write.
    const resynced = await apply(fromGit("synced"), "argocd-controller");
    expectFilled(resynced);
    // Another tool (field manager) applying the same manifest changes nothing about that.
    expectFilled(await apply(fromGit("synced"), "kustomize-controller"));
  });

  it("stays filled when kubectl's client-side apply re-applies the Git manifest", async () => {
    const manifest = fromGit("client-side");
    const lastApplied = JSON.stringify(manifest);
    manifest.metadata = {
      ...manifest.metadata,
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": lastApplied },
    };
    expectFilled(
      await harness.core.createNamespacedSecret({ namespace: NAMESPACE, body: manifest }),
    );
    // What `kubectl apply` sends the second time: a strategic merge patch back to the manifest.
    const patched = await harness.core.patchNamespacedSecret(
      {
        namespace: NAMESPACE,
        name: "client-side",
        body: {
          data: manifest.data,
          metadata: {
            annotations: { "kubectl.kubernetes.io/last-applied-configuration": lastApplied },
          },
        },
      },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
    expectFilled(patched);
    expect(
      patched.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"],
    ).toBe(lastApplied);
  });
});

describe("onboard --dry-run --out, applied in the documented order", () => {
  const CLUSTER = "gitops-render";
  /** The built CLI, as the package ships it (test/e2e/global-setup.ts). */
  const cliPath = inject("cliPath");
  let work: string;
  let rendered: string;
  const applied: KubernetesObject[] = [];

  async function cli(...args: string[]): Promise<string> {
    const { stdout } = await promisify(execFile)(process.execPath, [cliPath, ...args], {
      env: process.env,
      timeout: 120_000,
    });
    return stdout;
  }

  async function render(out: string): Promise<void> {
    const adminPath = join(work, "admin.kubeconfig");
    const caFile = join(work, "webhook-ca.pem");
    await writeFile(adminPath, adminKubeconfig, { mode: 0o600 });
    await writeFile(caFile, harness.caPem);
    await cli(
      "onboard",
      CLUSTER,
      "--dry-run",
      "--out",
      out,
      "--token-file",
      join(work, "webhook.token"),
      "--registries",
      `${EAST},${WEST}`,
      "--namespaces",
      CLUSTER,
      "--webhook-url",
      harness.server.url,
      "--ca-bundle",
      caFile,
      "--record-key-arn",
      await testRecordKey(inject("motoUrl")),
      "--allowed-registries",
      `${EAST},${WEST}`,
      "--kubeconfig",
      adminPath,
      "--allowed-source-cidrs",
      "127.0.0.1/32",
    );
  }

  /** `kubectl apply --server-side --field-manager=ecr-anywhere -f <file>`, as the files' headers say. */
  async function applyFile(name: string): Promise<void> {
    const text = await readFile(join(rendered, name), "utf8");
    for (const document of parseAllDocuments(text)) {
      const object = document.toJS() as KubernetesObject;
      await objects.patch(
        object,
        undefined,
        undefined,
        "ecr-anywhere",
        true,
        PatchStrategy.ServerSideApply,
      );
      applied.push(object);
    }
  }

  let written = 0;
  /** A managed Secret write as a user makes it: it must never be refused. */
  async function managedWrite(): Promise<V1Secret> {
    return harness.core.createNamespacedSecret({
      namespace: CLUSTER,
      body: {
        metadata: { name: `pull-${written++}`, labels: { [names.managedLabel]: "true" } },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": Buffer.from("{}").toString("base64") },
      },
    });
  }

  /** Every file under `dir`, by its path relative to it. */
  async function filesIn(dir: string): Promise<Record<string, string>> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    const files = entries.filter((entry) => entry.isFile());
    return Object.fromEntries(
      await Promise.all(
        files.map(async (entry) => {
          const path = join(entry.parentPath, entry.name);
          return [path.slice(dir.length + 1), await readFile(path, "utf8")];
        }),
      ),
    );
  }

  beforeAll(async () => {
    // The suite above registered its own webhook for the same labels: out of this one's way.
    await harness.admission
      .deleteMutatingWebhookConfiguration({ name: "ecr-anywhere-gitops" })
      .catch(() => undefined);
    // A namespace of the user's, with a label of theirs that the partial object must leave alone.
    await harness.core.createNamespace({
      body: { metadata: { name: CLUSTER, labels: { team: "platform" } } },
    });
    work = await mkdtemp(join(tmpdir(), "ecr-anywhere-gitops-render-"));
    rendered = join(work, "first");
    await render(rendered);
  });

  afterAll(async () => {
    for (const object of applied.reverse()) {
      if (object.kind === "Namespace" && object.metadata?.name === CLUSTER) continue;
      await objects.delete(object).catch(() => undefined);
    }
    // The test bed runs no namespace controller: finish the refresher namespace's deletion.
    await retireNamespace(harness.core, "ecr-anywhere");
    await retireNamespace(harness.core, CLUSTER);
    const store = new RecordStore(DEFAULT_RECORDS_NAME);
    await store.scheduleDeletion(CLUSTER, 1).catch(() => undefined);
    store.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("renders the same bytes again with --token-file, every file", async () => {
    const again = join(work, "second");
    await render(again);
    const first = await filesIn(rendered);
    expect(Object.keys(first).sort()).toEqual([
      "namespaces.yaml",
      "rbac.yaml",
      "refresher-record.json",
      "webhook-record.json",
      "webhook.yaml",
    ]);
    expect(await filesIn(again)).toEqual(first);
  });

  it("never blocks a managed write: labels and RBAC, then put-record, then the webhook", async () => {
    await applyFile("namespaces.yaml");
    expect((await harness.core.readNamespace({ name: CLUSTER })).metadata?.labels).toMatchObject({
      [names.namespaceLabel]: "enabled",
      team: "platform",
    });
    await managedWrite();
    await applyFile("rbac.yaml");
    await managedWrite();

    const { status } = await harness.core.createNamespacedServiceAccountToken({
      namespace: "ecr-anywhere",
      name: "ecr-anywhere-refresher",
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const recordFile = join(rendered, "refresher-record.json");
    await writeFile(
      recordFile,
      (await readFile(recordFile, "utf8")).replace(
        "REPLACE-WITH-REFRESHER-TOKEN",
        status?.token ?? "",
      ),
    );
    await cli(
      "put-record",
      CLUSTER,
      "--from",
      rendered,
      "--record-key-arn",
      await testRecordKey(inject("motoUrl")),
    );
    await managedWrite();

    await applyFile("webhook.yaml");
    // The configuration reaches the admission chain asynchronously: every write on the way succeeds.
    let last: V1Secret | undefined;
    const refused: unknown[] = [];
    await waitFor(
      async () => {
        try {
          last = await managedWrite();
        } catch (error) {
          // waitFor would retry past a refusal: it is recorded, and ends the wait.
          refused.push(error instanceof ApiException ? error.body : error);
          return true;
        }
        return last.metadata?.annotations?.[names.expiresAtAnnotation] !== undefined;
      },
      30_000,
      "the rendered webhook configuration to take effect",
    );
    expect(refused).toEqual([]);
    expectFilled(last as V1Secret);
    expect(harness.events.at(-1)?.rawPath).toMatch(new RegExp(`^/v1/clusters/${CLUSTER}/`));
  });
});
